//! Data directory identity: claimed once, refused when another node or cluster owns it.

use super::*;

#[test]
fn pristine_data_dir_is_claimed_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("a/node1");
    assert!(
        ensure_data_dir_identity(&dir, "demo", 1).unwrap(),
        "new dir is pristine"
    );
    let text = fs::read_to_string(dir.join(IDENTITY_FILE)).unwrap();
    assert!(
        text.contains("cluster = \"demo\"") && text.contains("node_id = 1"),
        "{text}"
    );
    assert!(!dir.join("IDENTITY.tmp").exists());
    assert!(
        !ensure_data_dir_identity(&dir, "demo", 1).unwrap(),
        "second start"
    );
    // Later state next to the identity does not matter to the owner.
    fs::write(dir.join("log"), b"x").unwrap();
    assert!(!ensure_data_dir_identity(&dir, "demo", 1).unwrap());
}

#[test]
fn existing_empty_dir_is_pristine() {
    let tmp = tempfile::tempdir().unwrap();
    fs::create_dir(tmp.path().join("lost+found")).unwrap();
    fs::write(tmp.path().join("IDENTITY.tmp"), b"half written").unwrap();
    assert!(ensure_data_dir_identity(tmp.path(), "demo", 2).unwrap());
    assert!(!ensure_data_dir_identity(tmp.path(), "demo", 2).unwrap());
}

#[test]
fn refuses_data_dir_of_another_cluster() {
    let tmp = tempfile::tempdir().unwrap();
    ensure_data_dir_identity(tmp.path(), "prod", 1).unwrap();
    let e = ensure_data_dir_identity(tmp.path(), "demo", 1).unwrap_err();
    match &e {
        ConfigError::ForeignDataDir {
            found, expected, ..
        } => {
            assert_eq!(found, "cluster \"prod\" node 1");
            assert_eq!(expected, "cluster \"demo\" node 1");
        }
        other => panic!("want ForeignDataDir, got {other:?}"),
    }
    let msg = e.to_string();
    assert!(
        msg.contains("belongs to cluster \"prod\" node 1, not to cluster \"demo\""),
        "{msg}"
    );
    assert!(msg.contains("refusing to start"), "{msg}");
}

#[test]
fn refuses_data_dir_of_another_node() {
    let tmp = tempfile::tempdir().unwrap();
    ensure_data_dir_identity(tmp.path(), "demo", 1).unwrap();
    let e = ensure_data_dir_identity(tmp.path(), "demo", 2).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::ForeignDataDir { .. }), "{e:?}");
    assert!(msg.contains("belongs to cluster \"demo\" node 1, not to cluster \"demo\" node 2"));
}

#[test]
fn refuses_non_empty_dir_without_identity() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("conf"), b"db").unwrap();
    let e = ensure_data_dir_identity(tmp.path(), "demo", 1).unwrap_err();
    let msg = e.to_string();
    assert!(matches!(e, ConfigError::ForeignDataDir { .. }), "{e:?}");
    assert!(msg.contains("an unknown owner"), "{msg}");
    assert!(msg.contains("conf"), "{msg}");
    assert!(
        !tmp.path().join(IDENTITY_FILE).exists(),
        "must not claim it"
    );
}

#[test]
fn refuses_unreadable_identity() {
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join(IDENTITY_FILE), b"garbage").unwrap();
    let e = ensure_data_dir_identity(tmp.path(), "demo", 1).unwrap_err();
    assert!(matches!(e, ConfigError::DataDirIo { .. }), "{e:?}");
    assert!(e.to_string().contains("IDENTITY is unreadable"), "{e}");
    let newer = "cluster = \"demo\"\nnode_id = 1\nformat = 2\n";
    fs::write(tmp.path().join(IDENTITY_FILE), newer).unwrap();
    let e = ensure_data_dir_identity(tmp.path(), "demo", 1).unwrap_err();
    assert!(e.to_string().contains("format 2"), "{e}");
}

#[test]
fn data_dir_that_is_a_file_is_an_io_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("f");
    fs::write(&file, b"").unwrap();
    let e = ensure_data_dir_identity(&file, "demo", 1).unwrap_err();
    assert!(matches!(e, ConfigError::DataDirIo { .. }), "{e:?}");
}
