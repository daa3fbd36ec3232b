"""Defaults of nst video, in a module that imports nothing, so the CLI's help can show them cheaply."""

# Weight of the temporal term on the mean squared pixel difference (0..255 scale): it must dominate the
# style gradient where the flow is trusted, or the frames drift apart; much more blurs the texture, each
# warp resampling the previous output (benchmarks/results/video.json, docs/video.md).
DEFAULT_TEMPORAL_WEIGHT = 2e5
