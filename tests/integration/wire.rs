//! What the provider fakes share: reading an HTTP/1.1 request head off a connection.

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::TcpStream;

/// A request's head: the request line, then its header lines.
pub struct Head(Vec<String>);

impl Head {
    /// Reads the next request head; `None` when the connection closed first.
    pub async fn read(stream: &mut BufReader<TcpStream>) -> Option<Self> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
                return None;
            }
            if line == "\r\n" {
                return Some(Self(lines));
            }
            lines.push(line.trim_end().to_owned());
        }
    }

    pub fn request_line(&self) -> Option<&str> {
        self.0.first().map(String::as_str)
    }

    /// The value of header `name`, whatever its case.
    pub fn header(&self, name: &str) -> Option<String> {
        self.0.iter().find_map(|h| {
            let (key, value) = h.split_once(':')?;
            key.eq_ignore_ascii_case(name)
                .then(|| value.trim().to_owned())
        })
    }

    /// `Content-Length`, or 0.
    pub fn length(&self) -> usize {
        self.header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    }
}

/// A server on a free loopback port, with a runtime of its own, serving each connection
/// with `serve`; it stops when dropped.
pub struct Loopback {
    port: u16,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Loopback {
    pub fn start<F, Fut>(serve: F) -> Self
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        Self::start_after(std::time::Duration::ZERO, serve)
    }

    /// Like `start`, but the port refuses connections (nothing listens) for `down`
    /// first, as a provider that is down does.
    pub fn start_after<F, Fut>(down: std::time::Duration, serve: F) -> Self
    where
        F: Fn(TcpStream) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a free loopback port");
        let port = listener.local_addr().unwrap().port();
        // Closed meanwhile: a connection to it is refused.
        let listener = if down.is_zero() {
            Some(listener)
        } else {
            drop(listener);
            None
        };
        runtime.spawn(async move {
            let listener = if let Some(listener) = listener {
                listener
            } else {
                tokio::time::sleep(down).await;
                tokio::net::TcpListener::bind(("127.0.0.1", port))
                    .await
                    .expect("the port is free again")
            };
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream));
            }
        });
        Self {
            port,
            runtime: Some(runtime),
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Loopback {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
