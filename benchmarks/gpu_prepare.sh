#!/usr/bin/env bash
# Prepare the GPU suite's carry, here (a machine with network and ../shared/data), once per session:
#   bash benchmarks/gpu_prepare.sh
# -> .whl/        wheels (CPython 3.12, manylinux x86-64) of what the device image lacks: diffusers, open_clip,
#                 PyAV, torchao, pydantic, jsonargparse (`python -m benchmarks`) and their missing needs (the image has torch, transformers, timm, ...)
# -> .gpu_clips/  the smallest decodable real clips of at most 400x300 pixels (the 340x256 / 320x240 sets) from
#                 ../shared/data/real_clips, up to CLIP_MIB (default 10) MiB, with their MANIFEST.tsv rows
# Both are git-ignored and together stay under the device tool's 64 MiB carry limit. Then run the suite there:
#   run(command="bash benchmarks/gpu_run.sh", carry=[".whl", ".gpu_clips"], timeout_s=600)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
rm -rf .whl && mkdir -p .whl
WHEELS=(diffusers==0.42.1 open_clip_torch==3.3.0 ftfy==6.3.1 wcwidth==0.9.4 av==18.1.0 torchao==0.18.0
        pydantic==2.14.4 pydantic_core==2.50.5 annotated_types==0.8.0 typing_inspection==0.4.5
        importlib_metadata==10.2.0 lazy-importer jsonargparse==4.53.0 docstring_parser==0.18.0)
"$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64 \
    -d .whl "${WHEELS[@]}"
CLIPS=${SYNTHACT_CLIPS_SRC:-../shared/data/real_clips}
rm -rf .gpu_clips && mkdir -p .gpu_clips
BUDGET=$(( ${CLIP_MIB:-10} * 1048576 ))
head -1 "$CLIPS/MANIFEST.tsv" > .gpu_clips/MANIFEST.tsv
awk -F'\t' 'NR > 1 && $16 == "yes" && $9 <= 400 && $10 <= 300' "$CLIPS/MANIFEST.tsv" | sort -t$'\t' -k6,6n \
    | awk -F'\t' -v budget="$BUDGET" '{ total += $6; if (total > budget) exit; print }' >> .gpu_clips/MANIFEST.tsv
tail -n +2 .gpu_clips/MANIFEST.tsv | cut -f1 | while read -r rel; do
    mkdir -p ".gpu_clips/$(dirname "$rel")" && cp "$CLIPS/$rel" ".gpu_clips/$rel"
done
echo "wheels: $(du -sh .whl | cut -f1), clips: $(( $(wc -l < .gpu_clips/MANIFEST.tsv) - 1 )) in $(du -sh .gpu_clips | cut -f1)"
