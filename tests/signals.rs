//! Signals against the real `slant serve` process: a SIGHUP as soon as
//! its port opens is a reload, not a crash; a model path that becomes a FIFO or a
//! device is refused without wedging later reloads or shutdown; SIGTERM
//! then stops it with exit code 0.

#![cfg(unix)]

#[allow(dead_code)] // shared by the service tests, each using a part of it
mod common_service;

use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common_service::{model_a, model_b};

fn free_port() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap()
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: kill(2) on our own child's pid.
    let rc = unsafe { libc::kill(child.id() as i32, sig) };
    assert_eq!(rc, 0, "kill({sig}) failed");
}

/// Waits up to `within` for the child to exit; its exit code.
fn wait_exit(child: &mut Child, within: Duration) -> Option<i32> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code().or_else(|| {
                use std::os::unix::process::ExitStatusExt;
                status.signal().map(|s| 128 + s)
            });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    None
}

fn spawn(model: &Path, addr: SocketAddr) -> Child {
    Command::new(env!("CARGO_BIN_EXE_slant"))
        .args(["serve", "--addr", &addr.to_string(), "--model"])
        .arg(model)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// One gRPC health check over a fresh connection, within a second.
fn healthy(addr: SocketAddr) -> bool {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        tokio::time::timeout(Duration::from_secs(1), async {
            let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
                .ok()?
                .connect()
                .await
                .ok()?;
            tonic_health::pb::health_client::HealthClient::new(channel)
                .check(tonic_health::pb::HealthCheckRequest::default())
                .await
                .ok()
        })
        .await
        .ok()
        .flatten()
        .is_some()
    })
}

fn stderr_of(child: Child) -> String {
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn sighup_during_start_up_is_a_reload_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model.slant");
    model_a().save(&model).unwrap();
    let addr = free_port();
    let mut child = spawn(&model, addr);
    // The moment the port accepts a connection, SIGHUP it, again and
    // again: the old server installed its handlers ~150 ms after that, and
    // died of the first one (exit 129).
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the server never opened its port"
        );
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the server exited: {status:?}\n{}", stderr_of(child));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    let opened = Instant::now();
    while opened.elapsed() < Duration::from_millis(300) {
        signal(&child, libc::SIGHUP);
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "a SIGHUP killed the server: {status:?}\n{}",
                stderr_of(child)
            );
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(healthy(addr), "no health answer after the SIGHUPs");
    signal(&child, libc::SIGTERM);
    assert_eq!(wait_exit(&mut child, Duration::from_secs(10)), Some(0));
    let log = stderr_of(child);
    assert!(log.contains("SIGHUP: reloading the model"), "{log}");
}

#[test]
fn a_fifo_at_the_model_path_wedges_neither_reloads_nor_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("a.slant");
    model_a().save(&real).unwrap();
    let other = dir.path().join("b.slant");
    model_b().save(&other).unwrap();
    let fifo = dir.path().join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let link = dir.path().join("model.slant");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let repoint = |target: &Path| {
        let tmp = dir.path().join("tmp-link");
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(target, &tmp).unwrap();
        std::fs::rename(&tmp, &link).unwrap();
    };
    let addr = free_port();
    let mut child = spawn(&link, addr);
    let until = Instant::now() + Duration::from_secs(10);
    while !healthy(addr) {
        assert!(Instant::now() < until, "the server did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A FIFO, then /dev/zero: both refused; the server keeps answering.
    for target in [fifo.as_path(), Path::new("/dev/zero")] {
        repoint(target);
        signal(&child, libc::SIGHUP);
        std::thread::sleep(Duration::from_millis(200));
        assert!(healthy(addr), "no answer after a reload of {target:?}");
    }
    // A later good file is still picked up...
    repoint(&other);
    signal(&child, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(300));
    assert!(healthy(addr));
    // ...and SIGTERM stops the process promptly, FIFO or not.
    repoint(&fifo);
    signal(&child, libc::SIGHUP);
    std::thread::sleep(Duration::from_millis(50));
    let t = Instant::now();
    signal(&child, libc::SIGTERM);
    assert_eq!(
        wait_exit(&mut child, Duration::from_secs(5)),
        Some(0),
        "the server did not exit within 5 s of SIGTERM"
    );
    eprintln!("exited {:?} after SIGTERM", t.elapsed());
    let log = stderr_of(child);
    assert!(log.contains("a FIFO, not a regular file"), "{log}");
    assert!(
        log.contains("a character device, not a regular file"),
        "{log}"
    );
    assert!(log.contains("model reloaded"), "{log}");
}
