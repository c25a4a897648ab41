//! One-shot gzip inflation through libdeflate, for the common case: a
//! file of one gzip member whose trailer gives its inflated size.
//!
//! libdeflate inflates a whole buffer at once, faster than a streaming
//! decoder (the 58 MB gzipped profile of `scripts/bench.py`: 0.59 s for
//! the whole attribution against 0.68 s through `flate2`). Its `_ex`
//! entry point reports how much input the first member used, so the
//! answer is taken only when that member is the whole file and inflates
//! to exactly the size expected; anything else (several members, a
//! trailer that lies, bad data) returns `None` and the caller streams.

use libdeflate_sys as sys;

/// Inflates `raw`, a gzip file, into exactly `size` bytes, or `None`
/// when `raw` is not one gzip member of that inflated size.
pub(crate) fn one_member(raw: &[u8], size: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; size];
    let mut used_in = 0usize;
    let mut used_out = 0usize;
    // SAFETY: the decompressor is allocated, used by this thread alone
    // and freed before returning (or is null, checked). libdeflate reads
    // at most `raw.len()` bytes from `raw`'s pointer and writes at most
    // `out.len()` bytes to `out`'s, both live and exclusively borrowed
    // for the call; it writes the two counts through valid `&mut usize`.
    let ok = unsafe {
        let d = sys::libdeflate_alloc_decompressor();
        if d.is_null() {
            return None;
        }
        let r = sys::libdeflate_gzip_decompress_ex(
            d,
            raw.as_ptr().cast(),
            raw.len(),
            out.as_mut_ptr().cast(),
            out.len(),
            &mut used_in,
            &mut used_out,
        );
        sys::libdeflate_free_decompressor(d);
        r == sys::libdeflate_result_LIBDEFLATE_SUCCESS
    };
    (ok && used_in == raw.len() && used_out == size).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::one_member;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn one_member_inflates() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_le_bytes())
            .collect();
        assert_eq!(one_member(&gz(&data), data.len()), Some(data));
    }

    #[test]
    fn two_identical_members_are_not_one() {
        // The last trailer matches the first member's size and CRC: only
        // the input count tells that a second member follows.
        let one = gz(b"abcd");
        let two = [one.clone(), one].concat();
        assert_eq!(one_member(&two, 4), None);
    }

    #[test]
    fn wrong_size_or_bad_data() {
        let g = gz(b"hello");
        assert_eq!(one_member(&g, 4), None);
        assert_eq!(one_member(&g, 6), None);
        assert_eq!(one_member(&g[..g.len() - 1], 5), None);
        assert_eq!(one_member(b"not gzip at all", 5), None);
    }
}
