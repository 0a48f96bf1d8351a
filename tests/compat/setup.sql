-- Shared dataset for tests/compat/*.slt, run before each file (on a fresh server, or after
-- the DROPs below). One statement per line, each ending with `;`.
DROP TABLE IF EXISTS customers;
DROP TABLE IF EXISTS orders;
DROP TABLE IF EXISTS emps;
DROP TABLE IF EXISTS events;
DROP TABLE IF EXISTS scratch;
CREATE TABLE customers (id BIGINT PRIMARY KEY, name TEXT, city TEXT, born DATE, score DOUBLE PRECISION, active BOOLEAN);
CREATE TABLE orders (id BIGINT PRIMARY KEY, customer_id BIGINT, amount NUMERIC(10,2), qty INT, created TIMESTAMP, note TEXT);
CREATE TABLE emps (id INT PRIMARY KEY, name TEXT NOT NULL, manager_id INT, dept TEXT, salary INT, hired DATE);
CREATE TABLE events (ts TIMESTAMP, kind TEXT, customer_id BIGINT, value DOUBLE PRECISION);
INSERT INTO customers VALUES (1, 'Alice', 'Paris', '1990-05-17', 88.5, true), (2, 'Bob', 'London', '1985-12-01', 72, false), (3, 'Chloé', 'Paris', '2000-02-29', NULL, true), (4, 'dave', NULL, '1978-07-04', 95.25, NULL), (5, '', 'Berlin', NULL, 60, true), (6, NULL, 'London', '1999-01-01', 72, false), (7, 'Émile Zola', 'Berlin', '1995-10-31', -3.5, true), (8, 'bob', 'london', '1985-12-01', 0, true);
INSERT INTO orders VALUES (100, 1, 19.99, 1, '2024-01-05 10:00:00', 'first'), (101, 1, 5.00, 3, '2024-01-05 18:30:00', NULL), (102, 2, 120.50, 2, '2024-02-10 09:15:00', 'gift'), (103, 3, 0.00, 0, '2024-02-29 23:59:59', ''), (104, 3, 42.42, NULL, '2024-03-01 00:00:00', 'rush'), (105, NULL, 7.50, 5, '2024-03-15 12:00:00', 'orphan'), (106, 9, 99.99, 1, '2024-04-01 08:00:00', 'unknown customer'), (107, 4, NULL, 2, '2024-04-01 08:00:00', 'no amount'), (108, 5, -10.00, 1, NULL, 'refund'), (109, 1, 19.99, 2, '2024-05-20 14:45:30.25', 'repeat');
INSERT INTO emps VALUES (1, 'Ann', NULL, 'eng', 200, '2015-03-01'), (2, 'Ben', 1, 'eng', 150, '2016-07-15'), (3, 'Cid', 1, 'ops', 120, '2017-01-10'), (4, 'Dee', 2, 'eng', 150, '2018-11-30'), (5, 'Eve', 2, 'eng', 90, '2020-02-29'), (6, 'Fay', 3, 'ops', 120, '2021-06-01'), (7, 'Gus', 3, NULL, NULL, '2022-12-31'), (8, 'Hal', NULL, 'sales', 110, '2019-09-09');
INSERT INTO events VALUES ('2024-01-01 08:00:00', 'view', 1, 1.0), ('2024-01-01 08:05:00', 'click', 1, 2.5), ('2024-01-01 09:00:00', 'view', 2, NULL), ('2024-01-02 10:30:00', 'buy', 1, 19.99), ('2024-01-02 10:30:00', 'view', NULL, 0.5), ('2024-01-03 23:59:59', 'click', 3, -1), ('2024-01-03 23:59:59', 'click', 3, -1), ('2024-01-10 12:00:00', 'view', 9, 3.25), ('2024-01-11 00:00:00', NULL, 2, 100), (NULL, 'buy', 4, 7);
