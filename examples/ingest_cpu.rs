//! CPU cost of each step of the OTLP write path, per span, measured on exports written by the load
//! generator: what `serve` spends on a request (inflate, decode, map to envelopes, encode the
//! stored object) and what `work` spends on reading it back (parse the stored lines, merge each
//! entity, make its row).
//!
//! Unlike the whole-stack benchmark, nothing here shares the machine with other processes of the
//! stack: each step runs alone over every export, `--rounds` times, and is timed by the CPU time
//! of this thread (`/proc/thread-self/schedstat`), so the figures hold even on a busy machine.
//! Run by `scripts/bench-cpu.sh`, or by hand:
//!
//!     cargo run --release --example otel_load -- --write-exports /tmp/exports
//!     cargo run --release --example ingest_cpu -- /tmp/exports

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use langfuse_rs::domain::entity::EntityKind;
use langfuse_rs::domain::project::ProjectId;
use langfuse_rs::ingest::event::{parse_envelope_text, Event, Parsed};
use langfuse_rs::ingest::merge::{merge_observation, merge_trace};
use langfuse_rs::ingest::otel::decode::gunzip;
use langfuse_rs::ingest::otel::{decode, map_export, Encoding, Export};
use langfuse_rs::storage::clickhouse::observations::ObservationRow;
use langfuse_rs::storage::clickhouse::traces::TraceRow;
use langfuse_rs::storage::raw_events::{decode_segment_raw, Segment};
use langfuse_rs::write_path::{prepare_vetted, Prepared};
use serde_json::json;

/// The allocator of the `langfuse-rs` binary (`src/main.rs`): most of these steps' time is spent
/// allocating and freeing, so measuring with another allocator measures another program.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
struct Args {
    /// The directory `otel_load --write-exports` wrote (gzip protobuf exports).
    exports: PathBuf,
    /// How many times each step goes over every export.
    #[arg(long, default_value_t = 20)]
    rounds: usize,
}

/// CPU time this thread has run, from the scheduler's own account (nanoseconds).
fn thread_cpu() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let nanos = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(nanos)
}

/// Runs `step` `rounds` times and returns the last result and the CPU time of one round.
fn timed<T>(rounds: usize, mut step: impl FnMut() -> T) -> (T, Duration) {
    let started = thread_cpu();
    let mut out = step();
    for _ in 1..rounds {
        out = step();
    }
    (out, (thread_cpu() - started) / rounds as u32)
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let rounds = args.rounds.max(1);
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&args.exports)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "bin"))
        .collect();
    paths.sort();
    anyhow::ensure!(!paths.is_empty(), "no export-*.bin in {:?}", args.exports);
    let bodies: Vec<Vec<u8>> = paths.iter().map(std::fs::read).collect::<Result<_, _>>()?;
    let limit = 64 << 20;
    let project = ProjectId::authenticated("bench");
    let now = chrono::Utc::now();

    let (inflated, inflate) = timed(rounds, || {
        bodies
            .iter()
            .map(|b| gunzip(b, limit))
            .collect::<Result<Vec<_>, _>>()
    });
    let inflated = inflated?;
    let (exports, decoding) = timed(rounds, || {
        inflated
            .iter()
            .map(|b| decode(Encoding::Protobuf, b))
            .collect::<Result<Vec<Export>, _>>()
    });
    let exports = exports?;
    let spans: usize = exports.iter().map(Export::span_count).sum();
    let (mapped, mapping) = timed(rounds, || {
        exports
            .iter()
            .map(|e| map_export(e, now))
            .collect::<Vec<_>>()
    });
    let envelopes: usize = mapped.iter().map(|m| m.envelopes.len()).sum();
    let rejected: usize = mapped.iter().map(|m| m.rejected.len()).sum();
    // `prepare_vetted` takes the envelopes by value: each round's copies are made beforehand.
    let mut inputs: Vec<Vec<_>> = (0..rounds)
        .map(|_| {
            mapped
                .iter()
                .map(|m| {
                    m.envelopes
                        .iter()
                        .map(|(e, p)| (e.clone(), Ok(p.clone())))
                        .collect::<Vec<_>>()
                })
                .collect()
        })
        .collect();
    let (objects, encoding) = timed(rounds, || {
        inputs
            .pop()
            .unwrap_or_default()
            .into_iter()
            .map(|envelopes| prepare_vetted(&project, envelopes))
            .collect::<Vec<Prepared>>()
    });
    let segments: Vec<(&[u8], &Segment)> = objects
        .iter()
        .filter_map(Prepared::object)
        .flat_map(|(bytes, segments)| segments.iter().map(move |s| (bytes, s)))
        .collect();
    let object_bytes: usize = objects
        .iter()
        .filter_map(Prepared::object)
        .map(|(b, _)| b.len())
        .sum();

    let (events, reading) = timed(rounds, || {
        segments
            .iter()
            .map(|(bytes, segment)| {
                let line = &bytes[segment.offset as usize..][..segment.length as usize];
                let line = decode_segment_raw(line).unwrap().unwrap();
                let events: Vec<Event> = line
                    .events
                    .iter()
                    .filter_map(|e| match parse_envelope_text(e.get()) {
                        Ok(Parsed::Event(event)) => Some(*event),
                        _ => None,
                    })
                    .collect();
                (segment, events)
            })
            .collect::<Vec<_>>()
    });
    let ((traces, observations), merging) = timed(rounds, || {
        let (mut traces, mut observations) = (Vec::new(), Vec::new());
        for (segment, events) in &events {
            match segment.kind {
                EntityKind::Trace => traces
                    .extend(merge_trace("bench", &segment.entity_id, events).map(TraceRow::from)),
                EntityKind::Observation => observations.extend(
                    merge_observation("bench", &segment.entity_id, events)
                        .map(ObservationRow::from),
                ),
                EntityKind::Score => {}
            }
        }
        (traces, observations)
    });

    let per_span = |d: Duration| (d.as_nanos() as f64 / spans as f64 / 100.0).round() / 10.0;
    let serve = inflate + decoding + mapping + encoding;
    let work = reading + merging;
    let report = json!({
        "exports": bodies.len(),
        "spans": spans,
        "envelopes": envelopes,
        "rejected_spans": rejected,
        "bytes_per_span": {
            "sent": (bodies.iter().map(Vec::len).sum::<usize>() as f64 / spans as f64).round(),
            "stored": (object_bytes as f64 / spans as f64).round(),
        },
        "rows": {"traces": traces.len(), "observations": observations.len()},
        "rounds": rounds,
        "cpu_microseconds_per_span": {
            "serve": {
                "inflate": per_span(inflate),
                "decode_otlp": per_span(decoding),
                "map_and_check": per_span(mapping),
                "encode_object": per_span(encoding),
                "total": per_span(serve),
            },
            "work": {
                "read_stored_events": per_span(reading),
                "merge_into_rows": per_span(merging),
                "total": per_span(work),
            },
        },
        "spans_per_cpu_second": {
            "serve": (spans as f64 / serve.as_secs_f64()).round(),
            "work": (spans as f64 / work.as_secs_f64()).round(),
        },
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
