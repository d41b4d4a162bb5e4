//! The demo's "network": this device reaches the demo server through a
//! local relay that the demo script can unplug, so the demo shows what
//! really happens offline — the engine fails to connect, goes *offline*,
//! backs off, and uploads the backlog when the network returns — rather
//! than a paused engine.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use tokio::net::{TcpListener, TcpStream};

/// A relay from a local port to the demo server, with an on/off switch.
#[derive(Clone)]
pub struct DemoNetwork {
    online: Arc<AtomicBool>,
    addr: SocketAddr,
    task: Arc<tokio::task::JoinHandle<()>>,
}

impl DemoNetwork {
    pub async fn start(server: SocketAddr) -> std::io::Result<DemoNetwork> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let online = Arc::new(AtomicBool::new(true));
        let switch = online.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if !switch.load(Ordering::SeqCst) {
                    // Unplugged: the connection goes nowhere.
                    drop(client);
                    continue;
                }
                let switch = switch.clone();
                tokio::spawn(relay(client, server, switch));
            }
        });
        Ok(DemoNetwork { online, addr, task: Arc::new(task) })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_online(&self, on: bool) {
        self.online.store(on, Ordering::SeqCst);
        tracing::info!(online = on, "demo network");
    }

    pub fn stop(&self) {
        self.task.abort();
    }
}

/// Copies both ways until either side closes, or the network is unplugged
/// (checked between chunks, so a kept-alive connection dies too).
async fn relay(mut client: TcpStream, server: SocketAddr, online: Arc<AtomicBool>) {
    let Ok(mut upstream) = TcpStream::connect(server).await else { return };
    let (mut cr, mut cw) = client.split();
    let (mut ur, mut uw) = upstream.split();
    let watch = async {
        while online.load(Ordering::SeqCst) {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::select! {
        _ = tokio::io::copy(&mut cr, &mut uw) => {}
        _ = tokio::io::copy(&mut ur, &mut cw) => {}
        _ = watch => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn relays_while_online_and_refuses_while_unplugged() {
        let echo = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let echo_addr = echo.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = echo.accept().await {
                tokio::spawn(async move {
                    let mut buf = [0u8; 64];
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 || s.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                });
            }
        });
        let net = DemoNetwork::start(echo_addr).await.unwrap();
        let addr = net.addr;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"hi").await.unwrap();
        let mut buf = [0u8; 2];
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"hi");

        net.set_online(false);
        // The open connection is cut, and new ones get nothing.
        let mut rest = Vec::new();
        let n = tokio::time::timeout(std::time::Duration::from_secs(2), s.read_to_end(&mut rest)).await;
        assert!(matches!(n, Ok(Ok(0)) | Ok(Err(_))), "{n:?}");
        let mut s = TcpStream::connect(addr).await.unwrap();
        let _ = s.write_all(b"x").await;
        let got = tokio::time::timeout(std::time::Duration::from_secs(2), s.read(&mut buf)).await;
        assert!(matches!(got, Ok(Ok(0)) | Ok(Err(_))), "{got:?}");

        net.set_online(true);
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"ok").await.unwrap();
        s.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"ok");
        net.stop();
    }
}
