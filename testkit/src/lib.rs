//! Test harness shared by the integration and end-to-end tests: private
//! `redis-server` processes on free ports, each in its own temporary
//! directory, stopped when dropped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// How long a redis-server may take to become ready.
const START_TIMEOUT: Duration = Duration::from_secs(20);

const INSTALL_HINT: &str = "redis-server was not found on PATH. The tests need a real Redis: \
     install it with `apt-get update && apt-get install -y redis-server` (or run .ci/run, which does)";

#[derive(Debug, Clone, Copy, Default)]
pub struct RedisOptions {
    /// Log every write to an append-only file fsynced on each write, so a
    /// restart loses nothing.
    pub appendonly: bool,
}

/// A private redis-server on 127.0.0.1.
#[derive(Debug)]
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    options: RedisOptions,
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

impl RedisServer {
    pub fn start() -> Self {
        Self::start_with(RedisOptions::default())
    }

    pub fn start_with(options: RedisOptions) -> Self {
        let dir = tempfile::tempdir().expect("create a temporary directory for redis");
        let mut last_error = String::new();
        for _ in 0..5 {
            let port = free_port();
            match spawn(dir.path(), port, options) {
                Ok(child) => {
                    return Self {
                        child: Some(child),
                        port,
                        dir,
                        options,
                    };
                }
                Err(e) => last_error = e,
            }
        }
        panic!("redis-server did not start: {last_error}");
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Stops the server as a crash would (SIGKILL), without saving.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data directory.
    pub fn start_again(&mut self) {
        assert!(self.child.is_none(), "redis-server is still running");
        let child = spawn(self.dir.path(), self.port, self.options)
            .unwrap_or_else(|e| panic!("redis-server did not restart: {e}"));
        self.child = Some(child);
    }

    /// Kills the server and starts it again: only what reached disk survives.
    pub fn restart(&mut self) {
        self.kill();
        self.start_again();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn redis_binary() -> PathBuf {
    std::env::var_os("R1_REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

/// Starts redis-server and waits until it logs that it accepts connections.
fn spawn(dir: &Path, port: u16, options: RedisOptions) -> Result<Child, String> {
    let mut command = Command::new(redis_binary());
    command
        .arg("--port")
        .arg(port.to_string())
        .arg("--bind")
        .arg("127.0.0.1")
        .arg("--dir")
        .arg(dir)
        .arg("--save")
        .arg("")
        .arg("--logfile")
        .arg("")
        .arg("--daemonize")
        .arg("no");
    if options.appendonly {
        command
            .arg("--appendonly")
            .arg("yes")
            .arg("--appendfsync")
            .arg("always");
    } else {
        command.arg("--appendonly").arg("no");
    }
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                panic!("{INSTALL_HINT}");
            }
            format!("spawning redis-server: {e}")
        })?;
    let stdout = child.stdout.take().expect("stdout is piped");
    let (ready_tx, ready_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut log = Vec::new();
        let mut announced = false;
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if !announced {
                if line.contains("Ready to accept connections") {
                    announced = true;
                    let _ = ready_tx.send(Ok(()));
                } else {
                    log.push(line);
                }
            }
        }
        if !announced {
            let _ = ready_tx.send(Err(log.join("\n")));
        }
    });
    match ready_rx.recv_timeout(START_TIMEOUT) {
        Ok(Ok(())) => Ok(child),
        Ok(Err(log)) => {
            let _ = child.wait();
            Err(format!("redis-server exited on port {port}:\n{log}"))
        }
        Err(_) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(format!(
                "redis-server was not ready within {START_TIMEOUT:?}"
            ))
        }
    }
}

/// A plain HTTP/1.1 request to a test server; returns the status code and body.
pub fn http_request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::io::Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let body = body.unwrap_or("");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response);
    let (head, rest) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("response has no header end"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("bad status line in {head:?}")))?;
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        dechunk(rest)
    } else {
        rest.to_owned()
    };
    Ok((status, body))
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if size == 0 || after.len() < size {
            break;
        }
        body.push_str(&after[..size]);
        rest = after[size..].trim_start_matches("\r\n");
    }
    body
}

/// A service binary started as a real process; killed when dropped.
#[derive(Debug)]
pub struct ServiceProcess {
    child: Option<Child>,
    /// The JSON object the service printed on stdout when it was ready.
    pub ready: String,
    /// Later stdout lines.
    lines: mpsc::Receiver<String>,
}

impl ServiceProcess {
    /// Starts `binary` with `args` and waits (up to a minute) for the first
    /// stdout line, which every r1 service prints once it listens.
    pub fn start(binary: &Path, args: &[&str], envs: &[(&str, &str)]) -> Self {
        let mut child = Command::new(binary)
            .args(args)
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
        let stdout = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        let (line_tx, line_rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            let _ = tx.send(lines.next());
            // Keep draining so the service never blocks on a full pipe.
            for line in lines.map_while(Result::ok) {
                let _ = line_tx.send(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(Some(Ok(line))) => Self {
                child: Some(child),
                ready: line,
                lines: line_rx,
            },
            other => {
                let _ = child.kill();
                let status = child.wait();
                panic!(
                    "{} did not report ready ({other:?}); exit: {status:?}",
                    binary.display()
                );
            }
        }
    }

    /// A field of the ready line, e.g. `"grpc"` → `"127.0.0.1:40123"`.
    pub fn ready_field(&self, name: &str) -> String {
        let key = format!("\"{name}\":\"");
        let start = self
            .ready
            .find(&key)
            .unwrap_or_else(|| panic!("no {name} in ready line {}", self.ready))
            + key.len();
        let end = self.ready[start..].find('"').expect("closing quote") + start;
        self.ready[start..end].to_owned()
    }

    /// The next stdout line containing `needle`, waiting up to `timeout`.
    pub fn wait_for_line(&self, needle: &str, timeout: Duration) -> Option<String> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let left = deadline.checked_duration_since(std::time::Instant::now())?;
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return Some(line),
                Ok(_) => continue,
                Err(_) => return None,
            }
        }
    }

    /// Waits for the process to exit on its own.
    pub fn wait(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        let child = self.child.as_mut()?;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            if std::time::Instant::now() > deadline {
                return None;
            }
            // Polling a child's exit status has no blocking form with a timeout.
            std::thread::park_timeout(Duration::from_millis(50));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(Child::id).unwrap_or(0)
    }

    /// SIGKILL, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> Option<std::process::ExitStatus> {
        let mut child = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        child.wait().ok()
    }
}

impl Drop for ServiceProcess {
    fn drop(&mut self) {
        self.kill();
    }
}
