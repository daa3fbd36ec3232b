"""ONNX Runtime sessions for the derived graphs, run through IO binding.

The same code serves CPU and CUDA: forward outputs are bound to the session's device and handed to the
backward graph as OrtValues, so on CUDA the saved activations never leave the GPU; only the loss-layer
activations (for the host losses) and the image gradient cross to the host.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol, runtime_checkable

import numpy as np

from .choices import DEVICES, PROVIDERS
from .errors import NstError
from .graphs.network import GraphPair


@dataclass(frozen=True)
class Device:
    """Where the graphs run: ONNX Runtime providers and the OrtValue device name."""

    name: str
    providers: tuple
    ort_device: str
    device_id: int = 0


def require_onnxruntime():
    """The onnxruntime module, or one NstError line saying how to install it (it comes with an extra)."""
    try:
        import onnxruntime
    except ImportError:
        from .diagnostics import INSTALL_HINT

        raise NstError(f"onnxruntime is not installed: {INSTALL_HINT}") from None
    return onnxruntime


def available_providers() -> list[str]:
    return list(require_onnxruntime().get_available_providers())


def preload_cuda_libraries(ort) -> bool:
    """Load the CUDA and cuDNN libraries from NVIDIA's pip wheels (the ".[gpu]" extra installs them) before the first
    CUDA session, as onnxruntime-gpu 1.21 and later offer; a no-op elsewhere. Returns whether it ran."""
    from .diagnostics import nvidia_wheels

    if not hasattr(ort, "preload_dlls") or not nvidia_wheels():
        return False
    ort.preload_dlls()
    return True


def resolve_device(name: str, device_id: int = 0) -> Device:
    """Map 'cpu' / 'cuda' to providers, failing early with a clear message when CUDA is absent."""
    DEVICES.check(name)
    ort = require_onnxruntime()
    if name == "cpu":
        return Device("cpu", (PROVIDERS["cpu"],), "cpu")
    providers = available_providers()
    if PROVIDERS["cuda"] not in providers:
        from .diagnostics import install, runtime_problem

        raise NstError(
            "device 'cuda' asked for but this onnxruntime has no CUDAExecutionProvider "
            f"(available: {', '.join(providers)}); "
            f"{runtime_problem() or 'install onnxruntime-gpu: ' + install('gpu')} or use --device cpu"
        )
    preload_cuda_libraries(ort)
    options = {"device_id": device_id, "cudnn_conv_algo_search": "HEURISTIC"} | cuda_options()
    return Device("cuda", ((PROVIDERS["cuda"], options),), "cuda", device_id)


def cuda_options(text: str | None = None) -> dict[str, str]:
    """Extra CUDA provider options from NST_CUDA_OPTIONS, e.g. 'use_tf32=0,cudnn_conv_algo_search=EXHAUSTIVE'
    (onnxruntime's own option names), so benchmarks can compare them without code changes."""
    import os

    text = os.environ.get("NST_CUDA_OPTIONS", "") if text is None else text
    options = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise NstError(f"NST_CUDA_OPTIONS: {item!r} is not NAME=VALUE (for example use_tf32=0)")
        options[key.strip()] = value.strip()
    return options


def to_device(array, device: Device):
    """A float32 OrtValue on the device (0-d scalars stay 0-d; on the CPU no copy is made when possible)."""
    import onnxruntime as ort

    value = np.asarray(array, dtype=np.float32)
    if not value.flags.c_contiguous:
        value = np.ascontiguousarray(value)
    return ort.OrtValue.ortvalue_from_numpy(value, device.ort_device, device.device_id)


_ARENA: list = []


def _shared_cpu_arena() -> None:
    """Register (once per process) the CPU arena that every nst session shares."""
    import onnxruntime as ort

    if _ARENA:
        return
    info = ort.OrtMemoryInfo("Cpu", ort.OrtAllocatorType.ORT_ARENA_ALLOCATOR, 0, ort.OrtMemType.DEFAULT)
    cfg = ort.OrtArenaCfg({"arena_extend_strategy": 1, "max_dead_bytes_per_chunk": 1 << 20})
    ort.create_and_register_allocator(info, cfg)
    _ARENA.append(info)


def make_session(
    model_bytes: bytes,
    device: Device,
    threads: int | None = None,
    layout_rewrite: bool = True,
    profile: str | None = None,
):
    """An InferenceSession on the given device (full graph optimisation unless `layout_rewrite` is off);
    `profile` (a file prefix) turns on ONNX Runtime's profiler, which records where each node ran."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    if profile:
        opts.enable_profiling = True
        opts.profile_file_prefix = profile
    # ALL adds the NCHWc layout rewrite: faster per iteration than EXTENDED, but each session keeps its
    # reordered weights besides the plain ones; sessions that run once per transfer use EXTENDED.
    opts.graph_optimization_level = (
        ort.GraphOptimizationLevel.ORT_ENABLE_ALL if layout_rewrite else ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    )
    opts.log_severity_level = 3
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    # No memory pattern: ORT would plan one block per input shape on the second run, which the shared
    # arena cannot place in the first run's freed chunks, so it would grow by both; without it the peak is
    # far lower for slightly more time per iteration.
    opts.enable_mem_pattern = False
    # The host kernels run between graph calls: do not leave ORT threads spinning over them.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    # One CPU arena for all nst sessions, grown by what is asked for (not doubled): the forward and
    # backward passes reuse each other's memory, which lowers the peak at the same speed.
    _shared_cpu_arena()
    opts.add_session_config_entry("session.use_env_allocators", "1")
    try:
        session = ort.InferenceSession(model_bytes, sess_options=opts, providers=list(device.providers))
    except Exception as exc:  # onnxruntime raises its own exception types
        raise NstError(f"onnxruntime could not load the graph on {device.name}: {str(exc).splitlines()[0]}") from None
    release_free_heap()
    return session


def release_free_heap() -> None:
    """Hand freed heap pages back to the system (glibc's malloc_trim; a no-op elsewhere).  Building a session
    parses, optimises and prepacks the weights through many large temporaries that glibc would keep mapped
    and no later allocation reuses."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim():
    """glibc's malloc_trim, looked up once (finding libc runs ldconfig), or None without glibc."""
    import ctypes

    try:
        return ctypes.CDLL(None).malloc_trim
    except (OSError, AttributeError):
        return None


@runtime_checkable
class Runner(Protocol):
    """What every runner offers: loss-layer activations of an image (for targets), on one device, through
    sessions built once.  GraphRunner adds `backward` (the split path), FusedRunner `evaluate` (the fused)."""

    loss_layers: tuple[str, ...]
    device: Device

    @property
    def sessions(self) -> dict: ...

    def forward(self, image: np.ndarray) -> dict[str, np.ndarray]: ...

    def release(self) -> None: ...


class GraphRunner:
    """Runs the forward and backward graphs of a GraphPair, keeping saved tensors on the device.

    Threads may share one runner: ONNX Runtime sessions run concurrently, and the tensors a forward pass
    saves for its backward pass belong to the thread that ran it."""

    def __init__(
        self,
        pair: GraphPair,
        device: Device,
        threads: int | None = None,
        backward: bool = True,
        profile: str | None = None,
    ) -> None:
        self.saved_names = pair.saved
        self.loss_layers = pair.loss_layers
        self.device = device
        # The ModelProtos are not kept: the sessions hold their own copy of the weights.
        self.forward_session = make_session(
            pair.forward.SerializeToString(),
            device,
            threads,
            layout_rewrite=backward,
            profile=profile and f"{profile}_forward",
        )
        self.backward_session = (
            make_session(pair.backward.SerializeToString(), device, threads, profile=profile and f"{profile}_backward")
            if backward and pair.backward is not None
            else None
        )
        self._state = threading.local()  # .saved: this thread's last forward pass

    @classmethod
    def features_only(
        cls, pair: GraphPair, device: Device, threads: int | None = None, profile: str | None = None
    ) -> GraphRunner:
        """A runner with the forward session alone (for targets)."""
        return cls(pair, device, threads, backward=False, profile=profile)

    @property
    def sessions(self) -> dict:
        """The runner's sessions by role."""
        return {"forward": self.forward_session, "backward": self.backward_session}

    def forward(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Run the features for a (1, 3, H, W) float32 RGB 0..255 image; return loss-layer activations on the host."""
        self._state.saved = {}  # free the last pass's tensors before this one allocates its own
        binding = self.forward_session.io_binding()
        binding.bind_ortvalue_input("image", to_device(image, self.device))
        for name in self.saved_names:
            binding.bind_output(name, self.device.ort_device, self.device.device_id)
        self.forward_session.run_with_iobinding(binding)
        saved = dict(zip(self.saved_names, binding.get_outputs()))
        self._state.saved = saved
        return {name: saved[name].numpy() for name in self.loss_layers}

    def backward(self, grads: dict[str, np.ndarray]) -> np.ndarray:
        """d loss / d image from d loss / d activation of each loss layer, reusing this thread's last forward
        pass."""
        saved = getattr(self._state, "saved", None)
        if not saved:
            raise RuntimeError("backward() needs a forward() first, in the same thread")
        session = self.backward_session
        if session is None:
            raise RuntimeError("this runner was made for features only: it has no backward graph")
        binding = session.io_binding()
        for name, value in saved.items():
            binding.bind_ortvalue_input(name, value)
        for name in self.loss_layers:
            binding.bind_ortvalue_input(f"grad_{name}", to_device(grads[name], self.device))
        binding.bind_output("grad_image", "cpu")
        session.run_with_iobinding(binding)
        return binding.get_outputs()[0].numpy()

    def release(self) -> None:
        """Drop the saved tensors of this thread's last forward pass."""
        self._state.saved = {}


class FusedRunner:
    """The fused objective graph plus a features-only session for computing targets.

    The runner holds sessions only; an objective's targets and per-layer scalars go to the device once, in
    the `BoundFused` view that `bind` returns, and Adam's moments live in the stepper `adam()` makes for
    each run, so threads and objectives sharing the runner never see each other's state.  The features
    session lives only while targets are computed (`drop_features` ends it; `forward` builds it again): the
    objective needs its memory more, and building it again is cheap next to a transfer.
    """

    def __init__(
        self,
        features: Callable[[], GraphPair],
        loss_layers: tuple[str, ...],
        fused,
        device: Device,
        threads: int | None = None,
        profile: str | None = None,
    ) -> None:
        self._build_features = features  # makes the features-only GraphPair
        self.features: GraphRunner | None = None
        self.loss_layers = loss_layers
        self.device = device
        self.profile = profile
        self.session = make_session(fused.SerializeToString(), device, threads, profile=profile and f"{profile}_fused")
        self.threads = threads
        self._adam_session = None
        self._lock = threading.Lock()  # guards building and dropping the features and Adam sessions

    def adam(self) -> DeviceAdam:
        """A device Adam stepper with fresh moments for one run; the step graph's session is built once."""
        with self._lock:
            if self._adam_session is None:
                self._adam_session = DeviceAdam(self.device, self.threads).session
        return DeviceAdam(self.device, self.threads, session=self._adam_session)

    @property
    def sessions(self) -> dict:
        """The runner's sessions by role."""
        features = self.features
        return {
            "features": features.forward_session if features else None,
            "fused": self.session,
            "adam": self._adam_session,
        }

    def forward(self, image: np.ndarray) -> dict[str, np.ndarray]:
        """Loss-layer activations of an image on the host (for targets), building the features session if needed."""
        with self._lock:
            if self.features is None:
                pair = self._build_features()
                self.features = GraphRunner.features_only(pair, self.device, self.threads, self.profile)
            features = self.features
        return features.forward(image)

    def release(self) -> None:
        features = self.features
        if features is not None:
            features.release()

    def drop_features(self) -> None:
        """End the features session (the targets are computed); the next `forward` builds it again.  A thread
        still computing its targets keeps the session it holds until it is done."""
        with self._lock:
            dropped, self.features = self.features, None
        if dropped is not None:
            del dropped
            release_free_heap()

    def bind(self, feeds: dict[str, np.ndarray]) -> BoundFused:
        """This runner with an objective's targets and scalars placed on the device once."""
        return BoundFused(self, {name: to_device(value, self.device) for name, value in feeds.items()})

    def evaluate_on_device(self, image, constants: dict, grad_on_host: bool = False):
        """(content loss, style loss, d loss / d image) for an image OrtValue already on the device, with
        the bound `constants`; the gradient stays there (an OrtValue) unless `grad_on_host`.  Only the two
        loss scalars are copied to the host."""
        binding = self.session.io_binding()
        binding.bind_ortvalue_input("image", image)
        for name, value in constants.items():
            binding.bind_ortvalue_input(name, value)
        for name in ("content_loss", "style_loss"):
            binding.bind_output(name, "cpu")
        if grad_on_host:
            binding.bind_output("grad_image", "cpu")
        else:
            binding.bind_output("grad_image", self.device.ort_device, self.device.device_id)
        self.session.run_with_iobinding(binding)
        content, style, grad = binding.get_outputs()
        return float(content.numpy()), float(style.numpy()), grad


class BoundFused:
    """A FusedRunner with one objective's targets on the device: what a FusedObjective evaluates through."""

    def __init__(self, runner: FusedRunner, constants: dict) -> None:
        self.runner = runner
        self.constants = constants
        self.loss_layers = runner.loss_layers
        self.device = runner.device

    @property
    def sessions(self) -> dict:
        return self.runner.sessions

    def forward(self, image: np.ndarray) -> dict[str, np.ndarray]:
        return self.runner.forward(image)

    def release(self) -> None:
        self.runner.release()

    def adam(self) -> DeviceAdam:
        return self.runner.adam()

    def evaluate(self, image: np.ndarray) -> tuple[float, float, np.ndarray]:
        """(content loss, style loss, d loss / d image) for a (1, 3, H, W) image."""
        content, style, grad = self.evaluate_on_device(to_device(image, self.device), grad_on_host=True)
        return content, style, grad.numpy()

    def evaluate_on_device(self, image, grad_on_host: bool = False):
        """`FusedRunner.evaluate_on_device` with these targets."""
        return self.runner.evaluate_on_device(image, self.constants, grad_on_host)


class DeviceAdam:
    """Adam on the device: the step graph (nst/engine/graphs/adamstep.py) with the image, gradient and moments
    bound as OrtValues, so they never leave the device; returns the tv loss of the image it steps from.
    One stepper per run (it holds that run's moments); runs may share one `session`."""

    def __init__(self, device: Device, threads: int | None = None, session=None) -> None:
        from .graphs.adamstep import build_adam_step

        self.device = device
        if session is None:
            session = make_session(build_adam_step().SerializeToString(), device, threads, layout_rewrite=False)
        self.session = session
        self.m = self.v = None

    def step(
        self,
        x,
        grad,
        k: int,
        lr: float,
        beta1: float,
        beta2: float,
        eps: float,
        low: float,
        high: float,
        tv_weight: float,
    ):
        """Step k (from 1) from image x with the network's gradient: (next image OrtValue, tv loss of x)."""
        if self.m is None:
            zeros = np.zeros(x.shape(), np.float32)
            self.m, self.v = to_device(zeros, self.device), to_device(zeros, self.device)
        lr_t = lr * np.sqrt(1.0 - beta2**k) / (1.0 - beta1**k)
        binding = self.session.io_binding()
        for name, value in (("x", x), ("grad", grad), ("m", self.m), ("v", self.v)):
            binding.bind_ortvalue_input(name, value)
        scalars = dict(lr_t=lr_t, beta1=beta1, beta2=beta2, eps=eps, low=low, high=high, tv_weight=tv_weight)
        for name, value in scalars.items():
            binding.bind_cpu_input(name, np.array(value, np.float32))
        for name in ("x_next", "m_next", "v_next"):
            binding.bind_output(name, self.device.ort_device, self.device.device_id)
        binding.bind_output("tv_loss", "cpu")
        self.session.run_with_iobinding(binding)
        x_next, self.m, self.v, tv = binding.get_outputs()
        return x_next, float(tv.numpy())


def node_placement(sessions: dict) -> dict[str, dict[str, int]]:
    """Which execution provider ran each node: {provider: {op type: nodes}}, from the profiles of
    sessions made with `profile` that have run at least once (ending their profiling)."""
    import json

    placement: dict[str, dict[str, int]] = {}
    for session in sessions.values():
        if session is None:
            continue
        path = session.end_profiling()
        if not path:
            continue
        seen = set()
        for event in json.loads(Path(path).read_text()):
            args = event.get("args", {})
            if event.get("cat") != "Node" or "provider" not in args or event["name"] in seen:
                continue
            seen.add(event["name"])
            by_op = placement.setdefault(args["provider"], {})
            by_op[args.get("op_name", "?")] = by_op.get(args.get("op_name", "?"), 0) + 1
        Path(path).unlink(missing_ok=True)
    return placement
