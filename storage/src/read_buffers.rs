//! Buffers that reads fill, kept per thread for the next read: a reader that hands its
//! buffer back (`recycle`) reads again without allocating and faulting in fresh pages.

use std::cell::RefCell;

/// At most this many buffers wait per thread.
const KEPT: usize = 4;

thread_local! {
    static FREE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// An empty buffer, one handed back before if there is one.
pub(crate) fn take() -> Vec<u8> {
    FREE.with(|f| f.borrow_mut().pop()).unwrap_or_default()
}

/// Hands a read's buffer back for this thread's next read.
pub fn recycle(mut buffer: Vec<u8>) {
    if buffer.capacity() == 0 {
        return;
    }
    buffer.clear();
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
}
