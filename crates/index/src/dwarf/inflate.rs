//! One-shot zlib inflation of a DWARF section through libdeflate, whose
//! whole-buffer decoder is faster than a streaming one (cmd/go's
//! `.debug_info`, design.md §6.4 "Loading"). The caller knows the
//! inflated size (the section's compression header gives it) and falls
//! back to `flate2` on any failure, so the answer is the same either way.

use libdeflate_sys as sys;

/// Inflates `stream`, one zlib stream, into exactly `size` bytes with a
/// valid checksum, or `None`.
pub(super) fn exact(stream: &[u8], size: usize) -> Option<Vec<u8>> {
    let mut out = vec![0u8; size];
    // SAFETY: the decompressor is allocated, used by this thread alone and
    // freed before returning (or is null, checked). libdeflate reads at
    // most `stream.len()` bytes from `stream`'s pointer and writes at most
    // `out.len()` bytes to `out`'s, both live and borrowed for the call;
    // a null `actual_out_nbytes_ret` makes it succeed only when it wrote
    // exactly `out.len()` bytes.
    let ok = unsafe {
        let d = sys::libdeflate_alloc_decompressor();
        if d.is_null() {
            return None;
        }
        let r = sys::libdeflate_zlib_decompress(
            d,
            stream.as_ptr().cast(),
            stream.len(),
            out.as_mut_ptr().cast(),
            out.len(),
            std::ptr::null_mut(),
        );
        sys::libdeflate_free_decompressor(d);
        r == sys::libdeflate_result_LIBDEFLATE_SUCCESS
    };
    ok.then_some(out)
}
