//! Tails a topic like a Flink source would: prints every message from the group's committed
//! offsets on (or the beginning), commits progress as it goes.
//!
//!     cargo run -p strata-reader --example tail -- http://127.0.0.1:8081 my-topic my-reader

use std::time::Duration;

use strata_reader::{Start, StreamReader};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt::init();
    let mut args = std::env::args().skip(1);
    let endpoint = args.next().unwrap_or_else(|| "http://127.0.0.1:8081".into());
    let topic = args.next().ok_or("usage: tail ENDPOINT TOPIC [GROUP]")?;
    let group = args.next().unwrap_or_else(|| "tail".into());
    let mut reader = StreamReader::connect(&endpoint, "", &topic, &group, Start::Committed).await?;
    println!(
        "reading {topic} ({} splits) from {:?}",
        reader.splits().len(),
        reader.checkpoint()
    );
    loop {
        let records = reader.poll(256, Duration::from_secs(10)).await?;
        for r in &records {
            let body = String::from_utf8_lossy(&r.message.body);
            println!("queue {} offset {}: {body}", r.queue, r.offset);
        }
        if !records.is_empty() {
            reader.commit().await?;
        }
    }
}
