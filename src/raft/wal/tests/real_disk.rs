//! The real disk's preallocation (WrittenAhead): the spare's zeros are written, the data
//! before them kept, and the file has the asked length.

use super::super::disk::{Disk, RealDisk};

#[test]
fn allocate_writes_zeros_past_the_data_and_keeps_the_data() {
    let dir = tempfile::tempdir().unwrap();
    let disk = RealDisk::open(dir.path()).unwrap();
    let f = disk.create("spare.tmp").unwrap();
    f.write_at(0, b"head bytes").unwrap();
    let len = (3 << 20) + 5;
    f.allocate(len).unwrap();
    assert_eq!(f.len().unwrap(), len);
    let mut head = [0u8; 10];
    f.read_at(0, &mut head).unwrap();
    assert_eq!(&head, b"head bytes");
    let mut rest = vec![1u8; (len - 10) as usize];
    f.read_at(10, &mut rest).unwrap();
    assert!(
        rest.iter().all(|&b| b == 0),
        "the spare reads as zeros past the data"
    );
    // Allocating less than the length changes nothing.
    f.allocate(100).unwrap();
    assert_eq!(f.len().unwrap(), len);
    f.read_at(0, &mut head).unwrap();
    assert_eq!(&head, b"head bytes");
}
