//! `lossyfs`: mounts the power-loss filesystem (`jepsen::lossyfs`) on a directory and serves
//! its control socket until `unmount`, SIGTERM or SIGINT.
//!
//! ```sh
//! lossyfs --mount /tmp/data --control /tmp/data.sock &
//! lossyfs --control /tmp/data.sock crash      # drop everything not fsynced
//! lossyfs --control /tmp/data.sock stats
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
use jepsen::lossyfs;

/// A FUSE filesystem that keeps unsynced data in a volatile layer and drops it on `crash`.
#[derive(Parser)]
#[command(name = "lossyfs", version)]
struct Cli {
    /// The directory to mount on (must exist). Without it, send COMMAND to --control.
    #[arg(long)]
    mount: Option<PathBuf>,
    /// The control socket (created by the mount; a file left by an earlier run is replaced).
    #[arg(long)]
    control: PathBuf,
    /// A command for a running lossyfs: crash, crash-torn, crash-reordered SEED, stats, ping, unmount.
    command: Option<String>,
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::SeqCst);
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let Some(dir) = cli.mount else {
        let Some(cmd) = cli.command else {
            eprintln!("lossyfs: give --mount DIR, or a COMMAND for --control");
            return ExitCode::from(2);
        };
        return match lossyfs::control(&cli.control, &cmd) {
            Ok(v) => {
                println!("{v}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("lossyfs: {e:#}");
                ExitCode::FAILURE
            }
        };
    };
    let _ = std::fs::remove_file(&cli.control);
    let listener = match std::os::unix::net::UnixListener::bind(&cli.control) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("lossyfs: bind {}: {e}", cli.control.display());
            return ExitCode::FAILURE;
        }
    };
    let (session, model) = match lossyfs::mount(&dir) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("lossyfs: {e:#}");
            let _ = std::fs::remove_file(&cli.control);
            return ExitCode::FAILURE;
        }
    };
    unsafe {
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }
    let quit = Arc::new(AtomicBool::new(false));
    {
        let quit = quit.clone();
        std::thread::spawn(move || {
            while !SIGNALLED.load(Ordering::SeqCst) {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            quit.store(true, Ordering::SeqCst);
        });
    }
    eprintln!(
        "lossyfs: mounted on {}, control {}",
        dir.display(),
        cli.control.display()
    );
    lossyfs::serve_control(listener, model.clone(), quit);
    let stats = model.lock().map(|m| m.stats()).ok();
    let status = match session.umount_and_join() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lossyfs: unmount {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    };
    let _ = std::fs::remove_file(&cli.control);
    if let Some(s) = stats {
        eprintln!(
            "lossyfs: unmounted {}; {}",
            dir.display(),
            serde_json::to_string(&s).unwrap_or_default()
        );
    }
    status
}
