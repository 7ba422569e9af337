//! Buffers that reads fill, kept per thread for the next read: a reader that hands its
//! buffer back (`recycle`) reads again without allocating and faulting in fresh pages. A
//! buffer keeps its old bytes while it waits, so one handed out for a read no longer than
//! the last (`take_len`) is not zeroed first only to be overwritten.

use std::cell::RefCell;

/// At most this many buffers wait per thread.
const KEPT: usize = 4;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer, one handed back before if there is one.
pub(crate) fn take() -> Vec<u8> {
    let mut buffer = FREE.with(|f| f.borrow_mut().pop()).unwrap_or_default();
    buffer.clear();
    buffer
}

/// A buffer of `len` bytes for a read to fill: what they hold is unspecified (an earlier
/// read's bytes; zeros past the length it had).
pub(crate) fn take_len(len: usize) -> Vec<u8> {
    let mut buffer = FREE.with(|f| f.borrow_mut().pop()).unwrap_or_default();
    buffer.resize(len, 0);
    buffer
}

/// Hands a read's buffer back for this thread's next read.
pub fn recycle(buffer: Vec<u8>) {
    if buffer.capacity() == 0 {
        return;
    }
    FREE.with(|f| {
        let mut free = f.borrow_mut();
        if free.len() < KEPT {
            free.push(buffer);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recycled_buffer_is_reused_empty() {
        let mut b = take();
        b.extend_from_slice(&[1, 2, 3]);
        let ptr = b.as_ptr();
        recycle(b);
        let again = take();
        assert!(again.is_empty());
        assert_eq!(again.as_ptr(), ptr);
        assert!(take().capacity() == 0, "only one was handed back");
    }

    #[test]
    fn a_buffer_taken_by_length_has_that_length() {
        let mut b = take_len(10);
        assert_eq!(b.len(), 10);
        b.copy_from_slice(&[7; 10]);
        recycle(b);
        let shorter = take_len(4);
        assert_eq!(shorter.len(), 4);
        recycle(shorter);
        let longer = take_len(64);
        assert_eq!(longer.len(), 64);
        assert!(longer[4..].iter().all(|&x| x == 0), "grown bytes are zeros");
    }
}
