//! samod 0.16 (the Rust automerge-repo) on the same documents, side by side.
//!
//! Two samod repos in this process, each with its filesystem storage in a
//! temporary directory (the durable storage samod ships, as labnet's SQLite
//! is), connected over real TCP on 127.0.0.1 with samod's own
//! length-delimited framing. The dialing repo's socket is wrapped to count
//! the bytes it reads and writes: TCP payload both ways, so samod's handshake
//! and every sync message are in, the TCP/IP headers are not (labnet's
//! figure is UDP payload, which does include QUIC's headers and ACKs).
//!
//! The measures are labnet's: initial sync to an empty peer that asks for
//! every document, one small change on the live connection, and catch-up
//! after the dialer disconnects, ten documents change and it dials again.

use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use automerge::{AutoCommit, Automerge, ChangeHash};
use samod::{BackoffConfig, DialError, Dialer, DocHandle, Repo, Transport};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::{small_edit_body, Figures};

/// How long any one samod step may take before the bench gives up: its
/// initial sync grows with the square of the number of documents.
const SAMOD_STEP_TIMEOUT: Duration = Duration::from_secs(600);

/// A TCP stream that counts the bytes through it, both ways.
struct Counted {
    inner: tokio::net::TcpStream,
    bytes: Arc<AtomicU64>,
}

impl AsyncRead for Counted {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        let read = (buf.filled().len() - before) as u64;
        self.bytes.fetch_add(read, Ordering::Relaxed);
        r
    }
}

impl AsyncWrite for Counted {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &r {
            self.bytes.fetch_add(*n as u64, Ordering::Relaxed);
        }
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Dials `addr` over TCP with samod's framing, counting into `bytes`.
struct CountingDialer {
    addr: std::net::SocketAddr,
    bytes: Arc<AtomicU64>,
}

impl Dialer for CountingDialer {
    type Error = std::io::Error;

    fn url(&self) -> samod::Url {
        samod::Url::parse(&format!("tcp://{}", self.addr)).unwrap()
    }

    fn connect(
        &self,
    ) -> Pin<Box<dyn std::future::Future<Output = Result<Transport, DialError<Self::Error>>> + Send>>
    {
        let (addr, bytes) = (self.addr, self.bytes.clone());
        Box::pin(async move {
            let inner = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(DialError::transient)?;
            inner.set_nodelay(true).map_err(DialError::transient)?;
            Ok(Transport::from_tokio_io(Counted { inner, bytes }))
        })
    }
}

async fn repo(dir: &std::path::Path) -> Repo {
    Repo::build_tokio()
        .with_storage(samod::storage::TokioFilesystemStorage::new(dir))
        .load()
        .await
}

fn heads(handle: &DocHandle) -> Vec<ChangeHash> {
    handle.with_document(|d| d.get_heads())
}

/// Waits until every `(replica, origin)` pair has the same heads, checking
/// every 5 ms.
async fn wait_heads(pairs: &[(&DocHandle, &DocHandle)]) {
    let deadline = Instant::now() + SAMOD_STEP_TIMEOUT;
    loop {
        if pairs.iter().all(|(r, o)| heads(r) == heads(o)) {
            return;
        }
        assert!(Instant::now() < deadline, "samod did not converge");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// How long the byte count must stand still for the connection to count as
/// quiet: well above a loopback round trip and samod's message batching.
const QUIET: Duration = Duration::from_millis(200);

/// Waits until `bytes` has not moved for [`QUIET`]; returns the count then.
async fn quiet(bytes: &AtomicU64) -> u64 {
    let mut last = bytes.load(Ordering::Relaxed);
    loop {
        tokio::time::sleep(QUIET).await;
        let now = bytes.load(Ordering::Relaxed);
        if now == last {
            return now;
        }
        last = now;
    }
}

/// The small edit of the labnet bench, made through samod's handle.
fn edit(handle: &DocHandle, round: i64) {
    handle.with_document(|doc| {
        let body = small_edit_body(&*doc, round);
        doc.transact::<_, _, autosurgeon::ReconcileError>(|tx| autosurgeon::reconcile(tx, &body))
            .unwrap();
    });
}

/// Runs the samod side of the comparison on `docs`.
pub(crate) async fn run(docs: &[AutoCommit]) -> Figures {
    let tmp = tempfile::tempdir().unwrap();
    let a = repo(&tmp.path().join("a")).await;
    let b = repo(&tmp.path().join("b")).await;
    let mut origin = Vec::with_capacity(docs.len());
    for d in docs {
        let doc = Automerge::load(&d.clone().save()).unwrap();
        origin.push(a.create(doc).await.unwrap());
    }

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let acceptor = a
        .make_acceptor(samod::Url::parse(&format!("tcp://{addr}")).unwrap())
        .unwrap();
    let accepting = tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let _ = socket.set_nodelay(true);
            let _ = acceptor.accept_tokio_io(socket);
        }
    });
    let bytes = Arc::new(AtomicU64::new(0));
    let dialer = Arc::new(CountingDialer {
        addr,
        bytes: bytes.clone(),
    });

    // Initial sync: the empty repo dials and asks for every document.
    let started = Instant::now();
    let dialing = b.dial(BackoffConfig::default(), dialer.clone()).unwrap();
    dialing.established().await.unwrap();
    let mut finding = tokio::task::JoinSet::new();
    for (i, h) in origin.iter().enumerate() {
        let find = b.find(h.document_id().clone());
        finding.spawn(async move { (i, find.await) });
    }
    let mut replicas: Vec<Option<DocHandle>> = vec![None; origin.len()];
    while let Some(joined) = finding.join_next().await {
        let (i, found) = joined.unwrap();
        replicas[i] = Some(found.unwrap().expect("samod found the document"));
    }
    let replicas: Vec<DocHandle> = replicas.into_iter().map(Option::unwrap).collect();
    let pairs: Vec<(&DocHandle, &DocHandle)> = replicas.iter().zip(&origin).collect();
    wait_heads(&pairs).await;
    let initial = started.elapsed();
    let initial_bytes = bytes.load(Ordering::Relaxed);

    // One small change on the live connection, once the initial sync's
    // last messages have gone.
    let before = quiet(&bytes).await;
    let one = docs.len() / 2;
    let started = Instant::now();
    edit(&origin[one], 100);
    wait_heads(&[(&replicas[one], &origin[one])]).await;
    let live = started.elapsed();
    // Its acknowledgements may follow the apply: count until quiet.
    let live_bytes = quiet(&bytes).await - before;

    // Catch-up: disconnect, change ten, dial again.
    dialing.close();
    quiet(&bytes).await;
    let n = docs.len();
    let ten: Vec<usize> = (7..n).step_by((n / 10).max(1)).take(10).collect();
    for &i in &ten {
        edit(&origin[i], 2);
    }
    let before = bytes.load(Ordering::Relaxed);
    let started = Instant::now();
    let dialing = b.dial(BackoffConfig::default(), dialer).unwrap();
    dialing.established().await.unwrap();
    let pairs: Vec<(&DocHandle, &DocHandle)> =
        ten.iter().map(|&i| (&replicas[i], &origin[i])).collect();
    wait_heads(&pairs).await;
    let catch_up = started.elapsed();
    let catch_up_bytes = bytes.load(Ordering::Relaxed) - before;
    // samod goes on syncing the other documents after the ten: what the
    // reconnect costs in all, until the connection is quiet.
    let catch_up_quiet_bytes = quiet(&bytes).await - before;

    dialing.close();
    accepting.abort();
    b.stop().await;
    a.stop().await;
    Figures {
        initial,
        initial_bytes,
        live,
        live_bytes,
        catch_up,
        catch_up_bytes,
        catch_up_quiet_bytes: Some(catch_up_quiet_bytes),
    }
}
