#!/usr/bin/env bash
# Media upload benchmark: concurrent uploads of large files through the local blob backend, where
# `serve` itself receives each upload (`PUT` to the signed URL of `POST /api/public/media`),
# checking its length and SHA-256 while it streams the body to a staging file. The question is
# whether `serve` holds uploads in memory: it must not grow by what is in flight.
#
# A release `serve` on a private stack (scripts/bench-stack.sh); ROUNDS rounds of CONCURRENCY
# uploads at once, each of SIZE_MB megabytes of distinct random bytes (so none is skipped as
# already uploaded). Reported: `serve`'s resident memory before the uploads, its peak during them
# (sampled every 20 ms, and the kernel's high-water mark), after them; upload throughput; and a
# check that every stored object has the bytes sent. The report is printed and saved in the run
# directory under .dev/bench/.
#
#     ./scripts/bench-media.sh                                  # 16 × 10 MB, 3 rounds
#     ./scripts/bench-media.sh --concurrency 32 --size-mb 20 --rounds 2
set -euo pipefail

concurrency=16
size_mb=10
rounds=3
while (($#)); do
    case $1 in
    --concurrency) concurrency=$2; shift 2 ;;
    --size-mb) size_mb=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    *) echo "usage: $0 [--concurrency N] [--size-mb N] [--rounds N]" >&2; exit 2 ;;
    esac
done

# shellcheck source=scripts/services.sh
source "$(dirname "${BASH_SOURCE[0]}")/services.sh"
cd "$LF_REPO_ROOT"
# shellcheck source=scripts/bench-stack.sh
source scripts/bench-stack.sh

ensure_packages
ensure_postgres
ensure_redis
ensure_python_venv

[[ -n ${LANGFUSE_RS_BIN:-} ]] || cargo build --release --bin langfuse-rs

bench_stack_up media
bench_start serve
serve_pid=$started_pid

python3 - "$api_url" "$serve_pid" "$concurrency" "$size_mb" "$rounds" "$run_dir" <<'PY' | tee "$run_dir/report.json"
import base64, hashlib, http.client, json, os, sys, threading, time, urllib.parse

url, pid, concurrency, size_mb, rounds, run_dir = sys.argv[1:]
pid, concurrency, size, rounds = int(pid), int(concurrency), int(size_mb) * 1024 * 1024, int(rounds)
auth = "Basic " + base64.b64encode(b"pk-lf-bench:sk-lf-bench").decode()
host = urllib.parse.urlparse(url)


def status_kib(field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])


samples, sampling = [], True


def sample():
    while sampling:
        samples.append(status_kib("VmRSS"))
        time.sleep(0.02)


def connection():
    return http.client.HTTPConnection(host.hostname, host.port, timeout=300)


def upload(index, results):
    body = os.urandom(size)
    sha = base64.b64encode(hashlib.sha256(body).digest()).decode()
    c = connection()
    request = {"traceId": f"bench-trace-{index}", "field": "input", "contentType": "application/octet-stream",
               "contentLength": size, "sha256Hash": sha}
    c.request("POST", "/api/public/media", json.dumps(request),
              {"Authorization": auth, "Content-Type": "application/json"})
    answer = json.loads(c.getresponse().read())
    target = urllib.parse.urlparse(answer["uploadUrl"])
    c.request("PUT", target.path + "?" + target.query, body, {"Content-Type": "application/octet-stream"})
    response = c.getresponse()
    response.read()
    results.append((response.status, answer["mediaId"], sha))
    c.close()


time.sleep(1)
before_kib = status_kib("VmRSS")
sampler = threading.Thread(target=sample)
sampler.start()
results, started = [], time.time()
for round_number in range(rounds):
    threads = [threading.Thread(target=upload, args=(round_number * concurrency + i, results))
               for i in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
elapsed = time.time() - started
sampling = False
sampler.join()
time.sleep(1)
after_kib = status_kib("VmRSS")

# Every stored object holds exactly the bytes sent.
blob = os.path.join(run_dir, "blob", "media", "bench")
stored_ok = 0
for status, media_id, sha in results:
    path = os.path.join(blob, media_id + ".bin")
    if status == 200 and os.path.exists(path):
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        stored_ok += base64.b64encode(digest.digest()).decode() == sha
total_mb = size * len(results) / (1024 * 1024)
print(json.dumps({
    "uploads": len(results), "concurrency": concurrency, "size_mb": size // (1024 * 1024),
    "answered_200": sum(1 for r in results if r[0] == 200), "stored_intact": stored_ok,
    "seconds": round(elapsed, 2), "throughput_mb_per_s": round(total_mb / elapsed, 1),
    "serve_rss_mib": {"before": round(before_kib / 1024, 1),
                      "peak_during": round(max(samples) / 1024, 1),
                      "after": round(after_kib / 1024, 1),
                      "high_water_mark": round(status_kib("VmHWM") / 1024, 1)},
    "in_flight_bytes_mib": concurrency * size // (1024 * 1024),
}, indent=2))
PY
