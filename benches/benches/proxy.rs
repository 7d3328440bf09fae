//! What the man-in-the-middle relay (`sv2-probe proxy`) costs: the latency it adds per frame (p50,
//! p99) and the frames per second it relays, Noise on both legs, with the relay alone on one core
//! (its own single-threaded runtime and OS thread; the client and the server run on another).
//!
//!   cargo bench -p sv2-benches --bench proxy                    # 20,000 round trips, 300,000 frames
//!   ROUNDS=2000 FRAMES=50000 cargo bench -p sv2-benches --bench proxy
//!
//! Latency: a client sends a frame and waits for the server's echo, directly and through the relay;
//! the relay adds (relayed round trip - direct round trip) / 2 per frame it carries (each round
//! trip crosses it twice). Throughput: the client sends frames as fast as it can; the server counts
//! them. "observer" runs the relay with what `proxy --json` does for every entry (the decoded
//! message as JSON); the monitor judges the recorded legs when the connection ends, not per frame.
//!
//! Under `cargo test` (no `--bench` argument) it runs a few hundred frames once, as a smoke test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use sv2_codec::messages::mining::SubmitSharesStandard;
use sv2_codec::noise::keys::{Keypair, SecretKey};
use sv2_codec::noise::{InitiatorConfig, ResponderConfig};
use sv2_codec::Message;
use sv2_scenario::relay::{serve, RelayConfig, RelayHandle};
use sv2_wire::{unix_now, Connection, Event, KeyLog};
use tokio::net::{TcpListener, TcpStream};

fn share(n: u32) -> Message<'static> {
    SubmitSharesStandard {
        channel_id: 1,
        sequence_number: n,
        job_id: 7,
        nonce: n.wrapping_mul(2_654_435_761),
        ntime: 1_700_000_000,
        version: 0x2000_0000,
    }
    .into()
}

/// An echo server (Noise) on a loopback port: every frame is sent back; `count` counts them.
async fn echo_server(authority: &Keypair, echo: bool, count: Arc<AtomicU64>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let now = unix_now();
    let responder = ResponderConfig::issue(
        &SecretKey::generate().unwrap(),
        authority,
        now - 60,
        now + 3600,
    );
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            let responder = responder.clone();
            let count = count.clone();
            tokio::spawn(async move {
                let Ok(mut conn) =
                    Connection::respond(stream, responder, Duration::from_secs(5), &KeyLog::none())
                        .await
                else {
                    return;
                };
                conn.transcript.set_retention(sv2_wire::Retention {
                    max_entries: 16,
                    max_bytes: 1 << 16,
                });
                while let Ok(frame) = conn.recv_frame("echo", Duration::from_secs(30)).await {
                    count.fetch_add(1, Ordering::Relaxed);
                    if echo && conn.send_frame(&frame, "echo").await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

async fn client(addr: SocketAddr, authority: &Keypair) -> Connection<TcpStream> {
    let stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.set_nodelay(true);
    let mut conn = Connection::initiate_now(
        stream,
        InitiatorConfig::new(authority.public),
        Duration::from_secs(5),
        &KeyLog::none(),
    )
    .await
    .unwrap();
    conn.transcript.set_retention(sv2_wire::Retention {
        max_entries: 16,
        max_bytes: 1 << 16,
    });
    conn
}

/// A relay to `upstream` on its own OS thread and single-threaded runtime.
async fn relay(upstream: SocketAddr, server: &Keypair, observer: bool) -> (RelayHandle, Keypair) {
    let authority = Keypair::generate().unwrap();
    let now = unix_now();
    let mut config = RelayConfig::new(upstream);
    config.upstream_noise = Some(Some(server.public));
    config.downstream_noise = Some(ResponderConfig::issue(
        &SecretKey::generate().unwrap(),
        &authority,
        now - 60,
        now + 3600,
    ));
    // What a long run keeps: the recent part of each leg.
    config.retention = sv2_wire::Retention::RECENT;
    if observer {
        config.observer = Some(Arc::new(|_, _, _, entry| {
            if let Event::Frame { decoded: Ok(d), .. } = &entry.event {
                std::hint::black_box(serde_json::to_string(&d.message).unwrap_or_default());
            }
        }));
    }
    if std::env::var_os("SAME_THREAD").is_some() {
        // The relay on the caller's runtime: no hand-off between threads (a measurement of the
        // relay's own work, without the wake-ups of a real deployment's separate processes).
        let handle = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).unwrap();
        return (handle, authority);
    }
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let handle = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).unwrap();
            tx.send(handle).unwrap();
            std::future::pending::<()>().await;
        });
    });
    (rx.recv().unwrap(), authority)
}

/// Round-trip times of `rounds` echoes, in µs, sorted.
async fn round_trips(conn: &mut Connection<TcpStream>, rounds: u32) -> Vec<f64> {
    let mut rtts = Vec::with_capacity(rounds as usize);
    for n in 0..rounds {
        let t = Instant::now();
        conn.send(&share(n)).await.unwrap();
        conn.recv_frame("echo", Duration::from_secs(10))
            .await
            .unwrap();
        rtts.push(t.elapsed().as_secs_f64() * 1e6);
    }
    rtts.sort_by(f64::total_cmp);
    rtts
}

fn pct(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// Frames per second through `addr` (sent as fast as the client can; counted by the server).
async fn throughput(addr: SocketAddr, authority: &Keypair, frames: u32, count: &AtomicU64) -> f64 {
    let mut conn = client(addr, authority).await;
    let before = count.load(Ordering::Relaxed);
    let t = Instant::now();
    for n in 0..frames {
        conn.send(&share(n)).await.unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    while count.load(Ordering::Relaxed) - before < u64::from(frames) && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_micros(200)).await;
    }
    let got = count.load(Ordering::Relaxed) - before;
    assert_eq!(got, u64::from(frames), "every frame arrives");
    got as f64 / t.elapsed().as_secs_f64()
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let var = |name: &str, default: u32| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let (rounds, frames) = if bench {
        (var("ROUNDS", 20_000), var("FRAMES", 300_000))
    } else {
        (200, 500)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let server = Keypair::generate().unwrap();
        let echoed = Arc::new(AtomicU64::new(0));
        let echo = echo_server(&server, true, echoed.clone()).await;
        let counted = Arc::new(AtomicU64::new(0));
        let sink = echo_server(&server, false, counted.clone()).await;

        let mut direct = client(echo, &server).await;
        let base = round_trips(&mut direct, rounds).await;
        println!("relay (sv2-probe proxy), Noise on both legs, relay on one core");
        println!(
            "direct round trip: p50 {:.1} µs, p99 {:.1} µs ({rounds} echoes)",
            pct(&base, 0.5),
            pct(&base, 0.99)
        );
        let direct_rate = throughput(sink, &server, frames, &counted).await;
        println!("direct: {direct_rate:.0} frames/s (the client's and server's own ceiling)");
        for observer in [false, true] {
            let (relay_echo, relay_key) = relay(echo, &server, observer).await;
            let mut via = client(relay_echo.addr, &relay_key).await;
            let rtts = round_trips(&mut via, rounds).await;
            let added = |p: f64| (pct(&rtts, p) - pct(&base, p)) / 2.0;
            let (relay_sink, sink_key) = relay(sink, &server, observer).await;
            let rate = throughput(relay_sink.addr, &sink_key, frames, &counted).await;
            println!(
                "relayed{}: round trip p50 {:.1} µs, p99 {:.1} µs; added per frame p50 {:.1} µs, p99 {:.1} µs; {rate:.0} frames/s",
                if observer { " + observer" } else { "" },
                pct(&rtts, 0.5),
                pct(&rtts, 0.99),
                added(0.5),
                added(0.99),
            );
            relay_echo.shutdown();
            relay_sink.shutdown();
        }
    });
}
