#!/usr/bin/env bash
# test_event_loop.sh: issue 25, class 4: an asyncio program that keeps hundreds of requests open at once keeps async, at no less than the concurrency it achieved.
. "$(dirname "$0")/lib.sh"

# 400 requests, 200 at a time, each answered after 200 ms by a server in the same loop: two waves of waits.
pp loop /usr/bin/python3 "$SRC/tests/fixtures/py/async_requests.py" 400 200 200
R=$T/loop.json
echo "# $(q $R "f\"{r['overall']['class']} {r['overall']['recommendation']['model']} x {r['overall']['recommendation']['workers']}; current {r['overall']['work_model']['current']}\"")"
expect_eq "event loop: exit" "$rc" 0
expect_eq "event loop: every request answered" "$(cat $T/loop.out)" "answers=400"
expect_eq "event loop: the requests counted" "$(q $R 'r["overall"]["io"]["network_round_trips"]')" 400
# 400 requests of >= 200 ms: at least 80 s in flight, over a run of well under 2 s.
expect_true "event loop: requests' time in flight measured" \
  "$(q $R 'str(r["overall"]["io"]["network_request_seconds"] >= 80).lower()')"
expect_eq "event loop: runs async today" "$(q $R 'r["overall"]["work_model"]["current"]["model"]')" async
expect_true "event loop: with tens of requests open at once" \
  "$(q $R 'str(r["overall"]["work_model"]["current"]["workers"] >= 40).lower()')"
expect_eq "event loop: the verdict keeps async" "$(q $R 'r["overall"]["recommendation"]["model"]')" async
# 200 requests were open in each wave: an event loop cut to a handful would take many more waves.
expect_true "event loop: at least 100 requests at once" \
  "$(q $R 'str(r["overall"]["recommendation"]["workers"] >= 100).lower()')"
expect_true "event loop: at no less than the concurrency it achieved" \
  "$(q $R 'str(r["overall"]["recommendation"]["workers"] >= r["overall"]["work_model"]["current"]["workers"]).lower()')"

finish
