#!/usr/bin/env bash
# Generates the default treatments in treatments/ (8 kHz, mono, 16-bit PCM WAV).
#
#   scripts/make-treatments.sh [OUTPUT_DIR]
#
# Needs sox and espeak-ng (Debian: apt-get install sox libsox-fmt-all espeak-ng).
# Deterministic: sox runs with -R (no random seed) and -D (no dither), so the same tools give
# the same bytes; the WAVs are committed, so the server never needs these tools.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$here/treatments}"
for tool in sox espeak-ng; do
    command -v "$tool" >/dev/null || { echo "make-treatments: $tool is not installed" >&2; exit 1; }
done
mkdir -p "$out"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

SOX=(sox -R -D -V1)
# Final form of every treatment: telephone band, 8 kHz mono 16-bit, peak at -3 dBFS.
finish() { # in out
    "${SOX[@]}" "$1" -r 8000 -c 1 -b 16 -e signed-integer "$2" highpass 120 lowpass 3400 gain -n -3
}

# ---- speech prompts -------------------------------------------------------------------------
speak() { # name text
    espeak-ng -v en-us+f3 -s 150 -p 45 -w "$work/$1.raw.wav" "$2"
    # A short lead-in and tail so the first syllable is not clipped by the far end's jitter
    # buffer and the prompt does not stop abruptly.
    "${SOX[@]}" "$work/$1.raw.wav" "$work/$1.pad.wav" pad 0.3 0.5
    finish "$work/$1.pad.wav" "$out/$1.wav"
}

speak customer_connect \
    "Hello. This is the callback you requested. Please stay on the line while we connect you to the next available agent."
speak all_agents_busy \
    "We are sorry. All of our agents are still busy, and we could not connect you this time. We will try to call you back later. Thank you, and goodbye."
speak call_fail_ans_machine \
    "Hello. This is a callback from our customer service team, returning your request. We are sorry we missed you. Please call us back at the number you used to contact us, at your convenience. Thank you, and goodbye."

# ---- waiting-for-agent music ----------------------------------------------------------------
# Synthesised at 44.1 kHz (sox's pluck needs it), then converted. Eight bars of 3.75 s (30 s):
# a soft sine pad under a plucked arpeggio, over C - Am - F - G - C - Em - F - G. The last
# bar (G) resolves into the first (C), and the ends have short fades, so the file loops
# without a click.
bar=3.75
note=$(echo "$bar / 8" | bc -l)
chords=(
    "C3 E3 G3|C4 E4 G4 C5 G4 E4 C4 E4"
    "A2 C3 E3|A3 C4 E4 A4 E4 C4 A3 C4"
    "F2 A2 C3|F3 A3 C4 F4 C4 A3 F3 A3"
    "G2 B2 D3|G3 B3 D4 G4 D4 B3 G3 B3"
    "C3 E3 G3|C4 G4 E4 G4 C5 G4 E4 G4"
    "E2 G2 B2|E3 G3 B3 E4 B3 G3 E3 G3"
    "F2 A2 C3|F3 C4 A3 C4 F4 C4 A3 C4"
    "G2 B2 D3|G3 D4 B3 D4 G4 F4 D4 B3"
)
i=0
for c in "${chords[@]}"; do
    pad="${c%%|*}"
    arp="${c##*|}"
    read -r p1 p2 p3 <<<"$pad"
    "${SOX[@]}" -r 44100 -n -c 1 "$work/pad$i.wav" synth "$bar" sine "$p1" sine "$p2" sine "$p3" \
        channels 1 vol 0.12 fade t 0.4 "$bar" 0.4
    j=0
    for n in $arp; do
        "${SOX[@]}" -r 44100 -n -c 1 "$work/n${i}_$j.wav" synth "$note" pluck "$n" vol 0.35 fade t 0.005 "$note" 0.08
        j=$((j + 1))
    done
    "${SOX[@]}" "$work"/n"${i}"_{0..7}.wav "$work/arp$i.wav"
    "${SOX[@]}" -m "$work/pad$i.wav" "$work/arp$i.wav" "$work/bar$i.wav"
    i=$((i + 1))
done
"${SOX[@]}" "$work"/bar{0..7}.wav "$work/bars.wav"
# Effects in a separate pass, with an explicit length: sox's fade cannot tell where a
# multi-input or reverberated stream ends.
"${SOX[@]}" "$work/bars.wav" "$work/music.wav" fade t 0.05 30 0.05 reverb 20 50 40 trim 0 30
"${SOX[@]}" "$work/music.wav" -r 8000 -c 1 -b 16 -e signed-integer "$out/waiting_for_agent.wav" \
    highpass 120 lowpass 3400 gain -n -6

ls -l "$out"/*.wav
