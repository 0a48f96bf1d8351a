-- DBeaver (PostgreSQL plugin, over pgjdbc): connect, read server info, navigator
-- (databases, schemas, data types, tables, columns, constraints, indexes, functions,
-- statistics, view definition).
--
-- Sources:
--   DBeaver 24.2.4 (org.jkiss.dbeaver.core Bundle-Version 24.2.4), commit 2428359b748778a5a345432906ab3da69289c20c,
--   https://github.com/dbeaver/dbeaver/tree/2428359b748778a5a345432906ab3da69289c20c/plugins/org.jkiss.dbeaver.ext.postgresql/src/org/jkiss/dbeaver/ext/postgresql/model
--     PostgreExecutionContext.refreshDefaults, PostgreDataSource (initialize, database list),
--     PostgreDatabase (readDatabaseInfo, SchemaCache, cacheDataTypes, RoleCache, description),
--     PostgreSchema (TableCache lookup/children, ConstraintCache, IndexCache, ProceduresCache,
--     collectObjectStatistics, readSchemaInfo), PostgreViewBase (pg_get_viewdef),
--     PostgreUtils.getQueryForSystemColumnChecking, PostgreDataTypeCache.getBaseTypeNameClause
--     (PostgreSQL >= 10 branches: version() reports 15.0).
--   datafusion-postgres datafusion-postgres/tests/dbeaver.rs @ 4c18f5ad6334effead3b56c787f9b47899959acd
--     (a DBeaver 25.1.5 capture): pgjdbc's SET statements, its TypeInfoCache queries
--     (oid 1034) and DatabaseMetaData.getSQLKeywords query, the pg_settings and pg_type queries.
-- JDBC '?' placeholders are sent by pgjdbc as $1..$n; DBeaver binds oids with setLong (int8).
-- Placeholders replaced for the test schema: database 'nowdb', schema 'public' ({{nspoid:public}}),
-- relation oids {{oid:users}} / {{oid:user_totals}}, all resolved by bi_replay.py at run time.
--
-- Format: see grafana.sql (';' line separates entries; '-- @' directive lines).

-- @name: pgjdbc SET extra_float_digits
SET extra_float_digits = 3
;
-- @name: pgjdbc SET application_name
SET application_name = 'PostgreSQL JDBC Driver'
;
-- @name: DBeaver SET application_name
SET application_name = 'DBeaver 24.2.4 - Main <nowdb>'
;
-- @name: PostgreDataSource read database list
-- @params: ["nowdb"]
-- @expect: nowdb
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE 1 = 1 AND datallowconn AND NOT datistemplate OR db.datname =$1
ORDER BY db.datname
;
-- @name: current_database()
-- @expect: nowdb
SELECT current_database()
;
-- @name: version()
SELECT version()
;
-- @name: isMetaObjectExists(pg_enum, *)
SELECT * FROM pg_catalog.pg_enum WHERE 1<>1 LIMIT 1
;
-- @name: isMetaObjectExists(pg_class, reltype)
SELECT reltype FROM pg_catalog.pg_class WHERE 1<>1 LIMIT 1
;
-- @name: readDatabaseInfo
-- @params: ["nowdb"]
-- @expect: nowdb
SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname=$1
;
-- @name: refreshDefaults: current_schema(), session_user
-- @expect-row: public | nowdb
SELECT current_schema(),session_user
;
-- @name: refreshDefaults: SHOW search_path
SHOW search_path
;
-- @name: SchemaCache
-- @expect: public, pg_catalog
SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass
 ORDER BY nspname
;
-- @name: readSchemaInfo
-- @params: ["public"]
SELECT s.oid as schema_id
from pg_catalog.pg_namespace s
WHERE s.nspname =$1
;
-- @name: pgjdbc TypeInfoCache (array type 1034)
SELECT n.nspname = ANY(current_schemas(true)), n.nspname, t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid WHERE t.oid = 1034
;
-- @name: pgjdbc TypeInfoCache (is_array 1034)
SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid   FROM pg_catalog.pg_type   LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r           from pg_namespace as ns           join ( select s.r, (current_schemas(false))[s.r] as nspname                    from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r          using ( nspname )        ) as sp     ON sp.nspoid = typnamespace  WHERE pg_type.oid = 1034  ORDER BY sp.r, pg_type.oid DESC
;
-- @name: pg_settings(standard_conforming_strings)
-- @params: ["standard_conforming_strings"]
-- @expect-row: standard_conforming_strings | on
select * from pg_catalog.pg_settings where name=$1
;
-- @name: pgjdbc getSQLKeywords
SELECT string_agg(word, ',' ) from pg_catalog.pg_get_keywords() where word <> ALL ('{a,abs,absolute,action,ada,add,admin,after,all,allocate,alter,aIways,and,any,are,array,as,asc,asenstitive,assertion,assignment,asymmetric,at,atomic,attribute,attributes,authorization,avg,before,begin,bernoulli,between,bigint,binary,blob,boolean,both,breaadth,by,c,call,called,cardinaliity,cascade,cascaded,case,cast,catalog,catalog_name,ceil,ceiling,chain,char,char_length,character,character_length,character_set_catalog,character_set_name,character_set_schema,characteristics,characters,check,checkeed,class_origin,clob,close,coalesce,coboI,code_units,collate,collation,collaition_catalog,collaition_name,collaition_schema,collect,colum,column_name,command_function,command_function_code,commit,committed,condiition,condiition_number,connect,connection_name,constraint,constraint_catalog,constraint_name,constraint_schema,constraints,constructors,contains,continue,convert,corr,correspondiing,count,covar_pop,covar_samp,create,cross,cube,cume_dist,current,current_collation,current_date,current_default_transfom_group,current_path,current_role,current_time,current_timestamp,current_transfom_group_for_type,current_user,cursor,cursor_name,cycle,data,date,datetime_interval_code,datetime_interval_precision,day,deallocate,dec,decimaI,declare,default,defaults,not,null,nullable,nullif,nulls,number,numeric,object,octeet_length,octets,of,old,on,only,open,option,options,or,order,ordering,ordinaliity,others,out,outer,output,over,overlaps,overlay,overriding,pad,parameter,parameter_mode,parameter_name,parameter_ordinal_position,parameter_speciific_catalog,parameter_speciific_name,parameter_speciific_schema,partiaI,partitioon,pascal,path,percent_rank,percentile_cont,percentile_disc,placing,pli,position,power,preceding,precision,prepare,preseerv,primary,prior,privileges,procedure,public,range,rank,read,reads,real,recursivve,ref,references,referencing,regr_avgx,regr_avgy,regr_count,regr_intercept,regr_r2,regr_slope,regr_sxx,regr_sxy,regr_sy y,relative,release,repeatable,restart,result,retun,returned_cardinality,returned_length,returned_octeet_length,returned_sqlstate,returns,revoe,right,role,rollback,rollup,routine,routine_catalog,routine_name,routine_schema,row,row_count,row_number,rows,savepoint,scale,schema,schema_name,scope_catalog,scope_name,scope_schema,scroll,search,second,section,security,select,self,sensitive,sequence,seriializeable,server_name,session,session_user,set,sets,similar,simple,size,smalIint,some,source,space,specifiic,speciific_name,speciifictype,sql,sqlexception,sqlstate,sqlwarning,sqrt,start,state,statement,static,stddev_pop,stddev_samp,structure,style,subclass_origin,submultiset,substring,sum,symmetric,system,system_user,table,table_name,tablesample,temporary,then,ties,time,timesamp,timezone_hour,timezone_minute,to,top_level_count,trailing,transaction,transaction_active,transactions_committed,transactions_rolled_back,transfor,transforms,translate,translation,treat,trigger,trigger_catalog,trigger_name,trigger_schema,trim,true,type,unbounde,undefined,uncommitted,under,union,unique,unknown,unnaamed,unnest,update,upper,usage,user,user_defined_type_catalog,user_defined_type_code,user_defined_type_name,user_defined_type_schema,using,value,values,var_pop,var_samp,varchar,varying,view,when,whenever,where,width_bucket,window,with,within,without,work,write,year,zone}'::text[])
;
-- @name: cacheDataTypes
-- @expect: int8, float4, float8, text, timestamp
SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description
FROM pg_catalog.pg_type t
LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem 
LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid
WHERE t.typname IS NOT NULL
AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')
;
-- @name: database description (pg_shdescription)
-- @params: ["nowdb"]
select description from pg_shdescription join pg_database on objoid = pg_database.oid where datname = $1
;
-- @name: RoleCache
-- @expect: nowdb
SELECT a.oid,a.*,pd.description FROM pg_catalog.pg_roles a 
left join pg_catalog.pg_shdescription pd on a.oid = pd.objoid
ORDER BY a.rolname
;
-- @name: TableCache (tables of schema public)
-- @params: [{"int8": "{{nspoid:public}}"}]
-- @expect: users, events, user_totals
-- @expect-row: users | r
-- @expect-row: user_totals | m
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key 
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
WHERE c.relnamespace=$1 AND c.relkind not in ('i','I','c')
;
-- @name: TableCache lookup (one table by name)
-- @params: [{"int8": "{{nspoid:public}}"}, "users"]
-- @expect: users
SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key 
FROM pg_catalog.pg_class c
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass
WHERE c.relnamespace=$1 AND c.relkind not in ('i','I','c') AND relname=$2
;
-- @name: TableCache children (columns of users)
-- @params: [{"int8": "{{oid:users}}"}]
-- @expect: user_id, country, score
-- @expect-row: users | user_id | True
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid=$1
ORDER BY a.attnum
;
-- @name: TableCache children (columns of all tables of schema public)
-- @params: [{"int8": "{{nspoid:public}}"}]
-- @expect: user_id, country, score, amount, ts, n, total
SELECT c.relname,a.*,pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) as def_value,dsc.description,dep.objid
FROM pg_catalog.pg_attribute a
INNER JOIN pg_catalog.pg_class c ON (a.attrelid=c.oid)
LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid=ad.adrelid AND a.attnum = ad.adnum)
LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid)
LEFT OUTER JOIN pg_depend dep on dep.refobjid = a.attrelid AND dep.deptype = 'i' and dep.refobjsubid = a.attnum and dep.classid = dep.refclassid
WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.relnamespace=$1
ORDER BY a.attnum
;
-- @name: ConstraintCache (users)
-- @params: [{"int8": "{{oid:users}}"}]
-- @expect-row: users_pkey | p | users
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
WHERE c.conrelid=$1
ORDER BY c.oid
;
-- @name: ConstraintCache (schema public)
-- @params: [{"int8": "{{nspoid:public}}"}]
-- @expect: users_pkey
SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then "substring"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy
FROM pg_catalog.pg_constraint c
INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid
LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass
WHERE t.relnamespace=$1
ORDER BY c.oid
;
-- @name: IndexCache (users)
-- @params: [{"int8": "{{oid:users}}"}]
-- @expect-row: users_pkey | users | True
SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans
FROM pg_catalog.pg_index i
INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid
INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid
LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid
WHERE  i.indrelid=$1 ORDER BY c.relname
;
-- @name: ProceduresCache (functions of schema public)
-- @params: [{"int8": "{{nspoid:public}}"}]
SELECT p.oid as poid,p.*,pg_catalog.pg_get_expr(p.proargdefaults, 0) as arg_defaults,d.description
FROM pg_catalog.pg_proc p
LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=p.oid and d.classoid='pg_proc'::regclass  AND d.objsubid = 0
WHERE p.pronamespace=$1
ORDER BY p.proname
;
-- @name: collectObjectStatistics (schema public)
-- @params: [{"int8": "{{nspoid:public}}"}]
select c.oid,pg_catalog.pg_total_relation_size(c.oid) as total_rel_size,pg_catalog.pg_relation_size(c.oid) as rel_size
FROM pg_class c
WHERE c.relnamespace=$1
;
-- @name: view definition (materialized view user_totals)
-- @expect-nonnull
SELECT pg_get_viewdef({{oid:user_totals}}, true)
;
