//! Where alerts go: a file or stdout (JSON lines or CEF) and, optionally, a syslog collector
//! (CEF inside RFC 5424 messages, over UDP or TCP with octet counting, RFC 6587).

use crate::alert::{AlertFormat, DetectAlert, write_alert};
use palisade_core::Severity;
use std::io::Write;
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::time::Duration;

/// Why an output could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("syslog target {0:?}: expected udp://HOST:PORT or tcp://HOST:PORT")]
    SyslogUrl(String),
    #[error("syslog target {target}: {source}")]
    Syslog {
        target: String,
        #[source]
        source: std::io::Error,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Transport {
    Udp,
    Tcp,
}

/// A syslog collector. TCP reconnects on the next alert after a failure.
#[derive(Debug)]
pub struct Syslog {
    target: String,
    transport: Transport,
    addr: std::net::SocketAddr,
    udp: Option<UdpSocket>,
    tcp: Option<TcpStream>,
    hostname: String,
    pid: u32,
}

impl Syslog {
    /// Parses `udp://HOST:PORT` or `tcp://HOST:PORT` and resolves it once.
    pub fn connect(url: &str) -> Result<Syslog, OutputError> {
        let (transport, rest) = if let Some(rest) = url.strip_prefix("udp://") {
            (Transport::Udp, rest)
        } else if let Some(rest) = url.strip_prefix("tcp://") {
            (Transport::Tcp, rest)
        } else {
            return Err(OutputError::SyslogUrl(url.to_string()));
        };
        let rest = rest.trim_end_matches('/');
        let addr = rest
            .to_socket_addrs()
            .map_err(|source| OutputError::Syslog {
                target: url.to_string(),
                source,
            })?
            .next()
            .ok_or_else(|| OutputError::SyslogUrl(url.to_string()))?;
        let mut syslog = Syslog {
            target: url.to_string(),
            transport,
            addr,
            udp: None,
            tcp: None,
            hostname: hostname(),
            pid: std::process::id(),
        };
        syslog.open().map_err(|source| OutputError::Syslog {
            target: url.to_string(),
            source,
        })?;
        Ok(syslog)
    }

    fn open(&mut self) -> std::io::Result<()> {
        match self.transport {
            Transport::Udp if self.udp.is_none() => {
                let bind = if self.addr.is_ipv6() {
                    "[::]:0"
                } else {
                    "0.0.0.0:0"
                };
                let socket = UdpSocket::bind(bind)?;
                socket.connect(self.addr)?;
                self.udp = Some(socket);
            }
            Transport::Tcp if self.tcp.is_none() => {
                let stream = TcpStream::connect_timeout(&self.addr, Duration::from_secs(5))?;
                stream.set_write_timeout(Some(Duration::from_secs(5)))?;
                let _ = stream.set_nodelay(true);
                self.tcp = Some(stream);
            }
            _ => {}
        }
        Ok(())
    }

    /// Sends one CEF line as an RFC 5424 message.
    pub fn send(&mut self, severity: Severity, cef: &str) -> std::io::Result<()> {
        let message = rfc5424(&self.hostname, self.pid, severity, cef);
        self.open()?;
        let result = match self.transport {
            Transport::Udp => match &self.udp {
                Some(socket) => socket.send(message.as_bytes()).map(|_| ()),
                None => Ok(()),
            },
            Transport::Tcp => match self.tcp.as_mut() {
                Some(stream) => {
                    let framed = format!("{} {message}", message.len());
                    stream.write_all(framed.as_bytes())
                }
                None => Ok(()),
            },
        };
        if result.is_err() {
            // Reconnect next time.
            self.tcp = None;
            self.udp = None;
        }
        result
    }

    pub fn target(&self) -> &str {
        &self.target
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty() && h.is_ascii() && !h.contains(' '))
        .unwrap_or_else(|| "-".to_string())
}

/// Syslog severity of an alert: critical → 2 (crit), high → 3 (err), medium → 4 (warning),
/// low → 5 (notice), otherwise 6 (info).
fn syslog_severity(severity: Severity) -> u8 {
    match severity {
        Severity::Critical => 2,
        Severity::High => 3,
        Severity::Medium => 4,
        Severity::Low => 5,
        Severity::Informational | Severity::Unknown => 6,
    }
}

/// `<PRI>1 TIMESTAMP HOST palisade PID detect - MSG` with facility 13 (log audit).
pub fn rfc5424(hostname: &str, pid: u32, severity: Severity, message: &str) -> String {
    const FACILITY: u8 = 13;
    let pri = u16::from(FACILITY) * 8 + u16::from(syslog_severity(severity));
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| "-".to_string());
    let message = message.trim_end_matches(['\n', '\r']);
    format!("<{pri}>1 {now} {hostname} palisade {pid} detect - {message}")
}

/// The alert outputs of a running server or command.
pub struct AlertWriter {
    format: AlertFormat,
    out: Box<dyn Write + Send>,
    syslog: Option<Syslog>,
    scratch: Vec<u8>,
}

impl std::fmt::Debug for AlertWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AlertWriter")
            .field("syslog", &self.syslog)
            .finish_non_exhaustive()
    }
}

impl AlertWriter {
    pub fn new(format: AlertFormat, out: Box<dyn Write + Send>, syslog: Option<Syslog>) -> Self {
        AlertWriter {
            format,
            out,
            syslog,
            scratch: Vec::new(),
        }
    }

    /// Writes one alert to every output; the first error is returned after trying all.
    pub fn write(&mut self, alert: &DetectAlert) -> std::io::Result<()> {
        let mut result = write_alert(alert, self.format, &mut self.out);
        if let Some(syslog) = self.syslog.as_mut() {
            self.scratch.clear();
            let sent = write_alert(alert, AlertFormat::Cef, &mut self.scratch).and_then(|()| {
                syslog.send(
                    alert.alert.severity,
                    &String::from_utf8_lossy(&self.scratch),
                )
            });
            if let Err(e) = sent {
                tracing::warn!("syslog {}: {e}", syslog.target());
                if result.is_ok() {
                    result = Err(e);
                }
            }
        }
        result
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn rfc5424_framing() {
        let m = rfc5424("node-1", 42, Severity::High, "CEF:0|Palisade|x\n");
        assert!(m.starts_with("<107>1 "), "{m}");
        assert!(
            m.ends_with(" node-1 palisade 42 detect - CEF:0|Palisade|x"),
            "{m}"
        );
        assert!(rfc5424("h", 1, Severity::Informational, "m").starts_with("<110>1 "));
        assert!(Syslog::connect("http://x:1").is_err());
    }

    #[test]
    fn udp_and_tcp_octet_counting() {
        let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut s = Syslog::connect(&format!("udp://{}", udp.local_addr().unwrap())).unwrap();
        s.send(Severity::Critical, "CEF:0|a").unwrap();
        let mut buf = [0u8; 512];
        udp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let n = udp.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(
            got.starts_with("<106>1 ") && got.ends_with("CEF:0|a"),
            "{got}"
        );

        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let mut s = Syslog::connect(&format!("tcp://{}", listener.local_addr().unwrap())).unwrap();
        let (mut conn, _) = listener.accept().unwrap();
        s.send(Severity::Low, "one").unwrap();
        s.send(Severity::Low, "two").unwrap();
        drop(s);
        let mut text = String::new();
        conn.read_to_string(&mut text).unwrap();
        // Two frames "LEN SP MSG", each LEN counting the message bytes exactly.
        let mut rest = text.as_str();
        let mut messages = Vec::new();
        while !rest.is_empty() {
            let (len, tail) = rest.split_once(' ').unwrap();
            let len: usize = len.parse().unwrap();
            messages.push(&tail[..len]);
            rest = &tail[len..];
        }
        assert_eq!(messages.len(), 2);
        assert!(messages[0].ends_with("one") && messages[1].ends_with("two"));
    }
}
