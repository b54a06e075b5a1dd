//! Running the `flowstone` binary as server and worker processes.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const BIN: &str = env!("CARGO_BIN_EXE_flowstone");

pub fn must<T, E: std::fmt::Display>(r: Result<T, E>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// The admin password of every test server; the CLI commands and workers sign in with it.
pub const PASSWORD: &str = "test-admin";

/// A client that signs in as the test servers' admin.
pub fn client() -> reqwest::Client {
    use base64::Engine;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("admin:{PASSWORD}"));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, must(format!("Basic {basic}").parse()));
    must(reqwest::Client::builder().default_headers(headers).build())
}

pub fn free_port() -> u16 {
    must(must(std::net::TcpListener::bind("127.0.0.1:0")).local_addr()).port()
}

/// Waits until something listens on `port`, at most 20 s.
///
/// A connection whose two ends are the same address is Linux's self-connect on a port of the
/// ephemeral range nobody listens on yet, not a server: it is dropped and tried again.
pub fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Ok(stream) = std::net::TcpStream::connect(("127.0.0.1", port))
            && stream.local_addr().ok() != stream.peer_addr().ok()
        {
            return;
        }
        assert!(Instant::now() < deadline, "server did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A `flowstone` process, killed when dropped.
pub struct Process(pub Child);

/// A `flowstone serve` process.
pub type Serve = Process;
/// A `flowstone worker` process.
pub type Worker = Process;

impl Process {
    /// `flowstone ARGS…`; FLOWSTONE_TEST_LOGS=1 shows its logs.
    fn spawn(args: &[&str]) -> Self {
        let logs = std::env::var_os("FLOWSTONE_TEST_LOGS").is_some();
        let child = must(
            Command::new(BIN)
                .args(args)
                .env("FLOWSTONE_ADMIN_PASSWORD", PASSWORD)
                .env("FLOWSTONE_PASSWORD", PASSWORD)
                .stdout(Stdio::null())
                .stderr(if logs { Stdio::inherit() } else { Stdio::null() })
                .spawn(),
        );
        Process(child)
    }

    /// `flowstone serve --data-dir DIR` on `port`, once it listens.
    pub fn start(dir: &Path, port: u16) -> Self {
        let dir = dir.to_string_lossy().into_owned();
        Self::start_args(&["--data-dir", &dir], port)
    }

    /// `flowstone serve --listen 127.0.0.1:PORT ARGS…`, once it listens.
    pub fn start_args(args: &[&str], port: u16) -> Self {
        let listen = format!("127.0.0.1:{port}");
        let server = Self::spawn(&[&["serve", "--listen", &listen][..], args].concat());
        wait_listening(port);
        server
    }

    /// `flowstone worker --server BASE ARGS…`.
    pub fn worker(base: &str, args: &[&str]) -> Self {
        Self::spawn(&[&["worker", "--server", base][..], args].concat())
    }

    /// Sends SIGTERM and waits for a clean exit.
    pub fn terminate(mut self) {
        let pid = self.0.id().to_string();
        assert!(must(Command::new("kill").args(["-TERM", &pid]).status()).success());
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(code) = must(self.0.try_wait()) {
                assert!(code.success(), "flowstone exited with {code}");
                return;
            }
            assert!(Instant::now() < deadline, "flowstone ignored SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Kills it at once (SIGKILL): no shutdown, no flush; a worker's jobs stay locked until
    /// their lock ends.
    pub fn kill9(mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
