//! Running the `flowstone` binary as a server process.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_flowstone");

pub fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

pub fn free_port() -> u16 {
    must(must(std::net::TcpListener::bind("127.0.0.1:0")).local_addr()).port()
}

pub struct Serve(pub Child);

impl Serve {
    pub fn start(dir: &Path, port: u16) -> Self {
        let dir = dir.to_string_lossy().into_owned();
        Self::start_args(&["--data-dir", &dir], port)
    }

    /// `flowstone serve --listen 127.0.0.1:PORT ARGS…`, once it listens.
    pub fn start_args(args: &[&str], port: u16) -> Self {
        let child = must(
            Command::new(BIN)
                .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
                .args(args)
                .stdout(Stdio::null())
                // FLOWSTONE_TEST_LOGS=1 shows the servers' logs.
                .stderr(if std::env::var_os("FLOWSTONE_TEST_LOGS").is_some() {
                    Stdio::inherit()
                } else {
                    Stdio::null()
                })
                .spawn(),
        );
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "server did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
        Serve(child)
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) {
        let pid = self.0.id().to_string();
        let status = must(Command::new("kill").args(["-TERM", &pid]).status());
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(code) = must(self.0.try_wait()) {
                assert!(code.success(), "server exited with {code}");
                return;
            }
            assert!(Instant::now() < deadline, "server ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Serve {
    /// Kills the server at once (SIGKILL): no shutdown, no flush.
    pub fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A `flowstone worker` process.
pub struct Worker(pub Child);

impl Worker {
    /// `flowstone worker --server BASE ARGS…`.
    pub fn start(base: &str, args: &[&str]) -> Self {
        let child = must(
            Command::new(BIN)
                .args(["worker", "--server", base])
                .args(args)
                .stdout(Stdio::null())
                .stderr(if std::env::var_os("FLOWSTONE_TEST_LOGS").is_some() {
                    Stdio::inherit()
                } else {
                    Stdio::null()
                })
                .spawn(),
        );
        Worker(child)
    }

    /// Sends SIGTERM and waits for a clean exit (after its grace period).
    pub fn terminate(mut self) {
        let pid = self.0.id().to_string();
        assert!(must(Command::new("kill").args(["-TERM", &pid]).status()).success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(code) = must(self.0.try_wait()) {
                assert!(code.success(), "worker exited with {code}");
                return;
            }
            assert!(Instant::now() < deadline, "worker ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills the worker at once (SIGKILL): its jobs stay locked until their lock ends.
    pub fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
