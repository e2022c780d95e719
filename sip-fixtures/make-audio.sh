#!/usr/bin/env bash
# Regenerates the raw G.711 audio of the scenario pack (headerless, multiple of 160 bytes, as
# SIPp's rtp_stream wants). Needs sox and espeak-ng. Deterministic (sox -R -D).
set -euo pipefail
cd "$(dirname "$0")/audio"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pad() { local f=$1; local n; n=$(stat -c %s "$f"); local r=$(( (160 - n % 160) % 160 ));
  [ "$r" -eq 0 ] || head -c "$r" /dev/zero | tr '\0' '\377' >> "$f"; }
espeak-ng -v en-us -s 160 -w "$tmp/hello.wav" "Hello? Who is this?"
sox -R -D "$tmp/hello.wav" -r 8000 -c 1 -t ul hello.ul
pad hello.ul
# Special information tone (913.8, 1370.6, 1776.7 Hz, 274/274/380 ms), then 1 s silence.
sox -R -D -r 8000 -n -t ul sit.ul synth 0.274 sine 913.8 : synth 0.274 sine 1370.6 : synth 0.380 sine 1776.7 : synth 1 sine 0 vol 0
pad sit.ul
# Fax CED answer tone 2100 Hz, 2.6 s.
sox -R -D -r 8000 -n -t ul fax-ced.ul synth 2.6 sine 2100 vol 0.5
pad fax-ced.ul
# Busy tone 480+620 Hz, 0.5 s on / 0.5 s off, 4 cycles (one cycle made, then repeated: sox's
# `repeat` after `:` would only repeat the last segment).
sox -R -D -r 8000 -n -c 1 "$tmp/busy1.wav" synth 0.5 sine 480 sine 620 remix - vol 0.4 : synth 0.5 sine 0 vol 0
sox -R -D "$tmp/busy1.wav" -t ul busy.ul repeat 3
pad busy.ul
# Voicemail: a greeting (about 4 s of speech), 0.3 s pause, a 1000 Hz beep of 0.5 s, 1.5 s silence.
espeak-ng -v en-us -s 150 -w "$tmp/greeting.wav" \
  "Hello, you have reached the voicemail of John Smith. I am not available right now. Please leave a message after the tone."
sox -R -D "$tmp/greeting.wav" -r 8000 -c 1 -b 16 "$tmp/greeting8k.wav"
sox -R -D -r 8000 -n -c 1 -b 16 "$tmp/pause.wav" synth 0.3 sine 0 vol 0
sox -R -D -r 8000 -n -c 1 -b 16 "$tmp/beep.wav" synth 0.5 sine 1000 vol 0.4
sox -R -D -r 8000 -n -c 1 -b 16 "$tmp/after.wav" synth 1.5 sine 0 vol 0
sox -R -D "$tmp/greeting8k.wav" "$tmp/pause.wav" "$tmp/beep.wav" "$tmp/after.wav" -t ul voicemail.ul
pad voicemail.ul
