//! The relay in SV1 mode: JSON lines relayed both ways as they are, whatever the TCP segmentation,
//! each recorded (parsed) on both legs; an over-long line is not relayed and is noted.

use std::time::Duration;

use sv2_scenario::relay::{serve, RelayConfig};
use sv2_wire::{Direction, Event};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sv1_lines_cross_the_relay_and_are_recorded_on_both_legs() {
    let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut config = RelayConfig::new(upstream.local_addr().unwrap());
    config.sv1 = true;
    let (tx, mut ended) = mpsc::unbounded_channel();
    config.ended = Some(tx);
    let relay = serve(TcpListener::bind("127.0.0.1:0").await.unwrap(), config).unwrap();

    let mut client = TcpStream::connect(relay.addr).await.unwrap();
    let (server, _) = upstream.accept().await.unwrap();
    let (server_r, mut server_w) = server.into_split();
    let mut server_lines = BufReader::new(server_r).lines();
    // A subscribe split in three writes, and an authorize in the same write as its end.
    for part in [
        &b"{\"id\":1,\"method\":\"mining.sub"[..],
        b"scribe\",\"params\":[\"test\"]}",
        b"\n{\"id\":2,\"method\":\"mining.authorize\",\"params\":[\"u\",\"p\"]}\n",
    ] {
        client.write_all(part).await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = server_lines.next_line().await.unwrap().unwrap();
    let second = server_lines.next_line().await.unwrap().unwrap();
    assert_eq!(
        first,
        "{\"id\":1,\"method\":\"mining.subscribe\",\"params\":[\"test\"]}"
    );
    assert!(second.contains("mining.authorize"));
    server_w
        .write_all(b"{\"id\":1,\"result\":[[],\"00\",4],\"error\":null}\n")
        .await
        .unwrap();
    // A line longer than any SV1 line may be: skipped, not relayed.
    server_w
        .write_all(&vec![b'x'; (1 << 20) + 1000])
        .await
        .unwrap();
    server_w
        .write_all(b"\n{\"id\":null,\"method\":\"mining.set_difficulty\",\"params\":[2]}\n")
        .await
        .unwrap();
    let mut client_lines = BufReader::new(client).lines();
    assert!(client_lines
        .next_line()
        .await
        .unwrap()
        .unwrap()
        .contains("\"result\""));
    assert!(client_lines
        .next_line()
        .await
        .unwrap()
        .unwrap()
        .contains("mining.set_difficulty"));
    drop(client_lines);
    let record = tokio::time::timeout(Duration::from_secs(10), ended.recv())
        .await
        .unwrap()
        .unwrap();
    for t in [&record.downstream, &record.upstream] {
        let methods: Vec<(Direction, String)> = t
            .entries()
            .iter()
            .filter_map(|e| match &e.event {
                Event::Sv1 {
                    direction,
                    parsed: Ok(m),
                    ..
                } => Some((*direction, m.method().unwrap_or("response").to_string())),
                _ => None,
            })
            .collect();
        assert_eq!(
            methods,
            [
                (Direction::ClientToServer, "mining.subscribe".to_string()),
                (Direction::ClientToServer, "mining.authorize".to_string()),
                (Direction::ServerToClient, "response".to_string()),
                (
                    Direction::ServerToClient,
                    "mining.set_difficulty".to_string()
                ),
            ]
        );
    }
    relay.shutdown();
}
