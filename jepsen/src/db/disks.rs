//! Data dirs that lose power (`DbOpts::lossyfs`): one lossyfs process per node, mounted before
//! the node starts and unmounted after it stops, and the power cut that drops what the node did
//! not fsync.

use super::*;

/// One node's lossyfs: its process and control socket.
pub(super) struct LossyMount {
    pub(super) child: Child,
    pub(super) socket: PathBuf,
    pub(super) mount: PathBuf,
}

impl Db {
    /// Mounts a fresh lossyfs on node `n`'s data dir and waits until it answers.
    pub(super) fn mount_lossyfs(&mut self, lossyfs: &Path, n: &NodeInfo) -> Result<()> {
        use std::os::unix::process::CommandExt as _;
        fs::create_dir_all(&n.data_dir)?;
        let socket = self.opts.run_dir.join(format!("node{}.lossyfs.sock", n.id));
        let log = self.opts.run_dir.join(format!("node{}.lossyfs.log", n.id));
        let log = OpenOptions::new().create(true).append(true).open(log)?;
        with_cleanup(|c| {
            c.mounts.insert(n.data_dir.clone());
        });
        let mut cmd = Command::new(lossyfs);
        cmd.arg("--mount")
            .arg(&n.data_dir)
            .arg("--control")
            .arg(&socket)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        // If the harness dies (even by SIGKILL), lossyfs gets SIGTERM and unmounts.
        unsafe {
            cmd.pre_exec(|| {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                Ok(())
            });
        }
        let mut child = cmd
            .spawn()
            .with_context(|| format!("spawn {}", lossyfs.display()))?;
        with_cleanup(|c| {
            c.pids.insert(child.id());
        });
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while crate::lossyfs::control(&socket, "ping").is_err() {
            if let Ok(Some(status)) = child.try_wait() {
                bail!(
                    "lossyfs for node {} exited ({status}); see node{}.lossyfs.log",
                    n.id,
                    n.id
                );
            }
            if std::time::Instant::now() > deadline {
                bail!("lossyfs for node {} did not answer within 10 s", n.id);
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        self.disks.insert(
            n.id,
            LossyMount {
                child,
                socket,
                mount: n.data_dir.clone(),
            },
        );
        Ok(())
    }

    /// Whether the data dirs are lossyfs mounts.
    pub fn has_lossyfs(&self) -> bool {
        !self.disks.is_empty()
    }

    /// Power loss of node `id`: kill -9, then drop everything its disk had not made durable
    /// (`crash`; `crash-torn`: the last unsynced write of each file half kept;
    /// `crash-reordered`: each unsynced 512-byte block kept or not, at random). Returns
    /// lossyfs's account of what was dropped. The node stays down ([`Db::start`] restarts it).
    pub fn power_cut(&mut self, id: u64, mode: CrashMode) -> Result<serde_json::Value> {
        self.kill(id)?;
        let disk = self
            .disks
            .get(&id)
            .ok_or_else(|| anyhow!("node {id} has no lossyfs (power cuts need --lossyfs)"))?;
        let cmd = match mode {
            CrashMode::Clean => "crash".to_owned(),
            CrashMode::Torn => "crash-torn".to_owned(),
            CrashMode::Reordered { seed } => format!("crash-reordered {seed}"),
        };
        let answer = crate::lossyfs::control(&disk.socket, &cmd)?;
        Ok(answer["crash"].clone())
    }

    /// lossyfs counters of node `id` (writes, syncs, bytes dropped so far).
    pub fn disk_stats(&self, id: u64) -> Result<serde_json::Value> {
        let disk = self
            .disks
            .get(&id)
            .ok_or_else(|| anyhow!("node {id} has no lossyfs"))?;
        Ok(crate::lossyfs::control(&disk.socket, "stats")?["stats"].clone())
    }

    /// Unmounts every lossyfs (after the nodes are down).
    pub(super) fn unmount_disks(&mut self) {
        for (_, mut d) in std::mem::take(&mut self.disks) {
            let _ = crate::lossyfs::control(&d.socket, "unmount");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                match d.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if std::time::Instant::now() < deadline => {
                        std::thread::sleep(std::time::Duration::from_millis(20))
                    }
                    _ => {
                        let _ = d.child.kill();
                        let _ = d.child.wait();
                        break;
                    }
                }
            }
            with_cleanup(|c| {
                c.pids.remove(&d.child.id());
            });
            if let Ok(c) = std::ffi::CString::new(d.mount.as_os_str().as_encoded_bytes()) {
                // Already unmounted unless lossyfs had to be killed.
                unsafe {
                    libc::umount2(c.as_ptr(), libc::MNT_DETACH);
                }
            }
            with_cleanup(|c| {
                c.mounts.remove(&d.mount);
            });
        }
    }
}
