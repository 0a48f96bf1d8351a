//! Key layout of the view engine's state in [`nowdb_storage::Cf::ViewState`]. Every key
//! starts with the view's (or table's) id, so dropping one is one range delete.

/// `id ++ 0x00 ++ group key`: a group's [`crate::agg::GroupState`].
pub fn group_key(view: u32, group: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + group.len());
    k.extend_from_slice(&view.to_be_bytes());
    k.push(0x00);
    k.extend_from_slice(group);
    k
}

/// `id ++ 0x01 ++ agg ++ group key`: the prefix of one aggregate's value multiset in a group.
pub fn values_prefix(view: u32, agg: usize, group: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(6 + group.len());
    k.extend_from_slice(&view.to_be_bytes());
    k.push(0x01);
    k.push(agg as u8);
    k.extend_from_slice(group);
    k
}

/// `id ++ 0x03 ++ join key`: the prefix of the stream rows joined to one keyed-table key.
pub fn join_prefix(view: u32, join_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(5 + join_key.len());
    k.extend_from_slice(&view.to_be_bytes());
    k.push(0x03);
    k.extend_from_slice(join_key);
    k
}

/// `id ++ 0xff`: a view's counters.
pub fn stats_key(view: u32) -> Vec<u8> {
    let mut k = view.to_be_bytes().to_vec();
    k.push(0xff);
    k
}

/// `id ++ 0xfe`: a table's greatest event time seen (for its watermark).
pub fn event_time_key(table: u32) -> Vec<u8> {
    let mut k = table.to_be_bytes().to_vec();
    k.push(0xfe);
    k
}

/// The first key after every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(&[1, 2]), vec![1, 3]);
        assert_eq!(prefix_end(&[1, 0xff]), vec![2]);
        let p = values_prefix(7, 2, &[1, 5]);
        let mut inside = p.clone();
        inside.extend_from_slice(&[0xff, 0xff]);
        assert!(p < inside && inside < prefix_end(&p));
    }
}
