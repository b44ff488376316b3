"""Modules: ``Module``, ``Neuron``, ``Layer`` and ``MLP``.

A neuron computes ``act(w·x + b) = act(w₀x₀ + … + wₙ₋₁xₙ₋₁ + b)``; a layer is neurons side by
side; an MLP is layers in sequence. Parameters are leaf ``Value``s, found by walking a module's
attributes in the order they were set (as ``torch.nn.Module`` does), which gives stable dotted
names such as ``layers.1.neurons.0.w.3``.

Reference: PyTorch documentation, ``torch.nn.Module`` and ``torch.nn.Linear`` (initialisation).
"""

from __future__ import annotations

import inspect
import json
import math
import numbers
import os
import random
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Union

import engine
from engine import Value
from engine.atomic import write_atomic
from nn.checks import MISSING, FieldError, choice, mapping, real, whole

Input = Union[Value, float, int]

ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
INITS = ("pytorch", "micrograd")
FORMAT_VERSION = 1

# Limits on what a model file may ask for, checked before anything is allocated: a tampered
# file cannot make the reader build a billion-weight model or recurse without end.
MAX_PARAMETERS = 1_000_000
MAX_FILE_BYTES = 256 * 2**20
MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 40  # longer than any float repr (e.g. -1.5345791372471203e-06) or sane int


def count_parameters(widths: list[int]) -> int:
    """The parameters of fully connected layers of these widths (inputs first):
    ``Σ (nᵢ + 1)·nᵢ₊₁``, each layer's weights and biases, counted before anything is built."""
    return sum((nin + 1) * nout for nin, nout in zip(widths, widths[1:]))


def _check_size(name: str, n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"{name} must be a whole number >= 1, got {n!r}")
    return int(n)


def _check_activation(activation: str) -> str:
    if activation not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")
    return activation


def _random(rng: random.Random | int | None) -> Any:
    """Where initial values come from: the ``random.Random`` given, one seeded with an ``int``,
    or (``None``) Python's global ``random``, so that ``random.seed(...)`` fixes them."""
    if rng is None or rng is random:
        return random
    return rng if isinstance(rng, random.Random) else random.Random(rng)


def _check_init(init: str) -> str:
    if init not in INITS:
        raise ValueError(f"init must be one of {', '.join(INITS)}; got {init!r}")
    return init


def activate(z: Value, activation: str) -> Value:
    """Apply an activation by name: ``relu``, ``tanh``, ``sigmoid`` or ``linear`` (identity)."""
    if activation == "linear":
        return z
    return getattr(z, _check_activation(activation))()


class Module:
    """Base class of everything with parameters, as ``torch.nn.Module``.

    Subclasses store their parameters (leaf Values), submodules, and lists of either as
    attributes; :meth:`named_parameters` finds them in the order the attributes were set.
    """

    def named_parameters(self, prefix: str = "", remove_duplicate: bool = True
                         ) -> Iterator[tuple[str, Value]]:
        """Yield ``(dotted name, parameter)`` pairs, e.g. ``("layers.0.neurons.2.w.1", w)``.

        The parameters are the leaf Values among the attributes, submodules and lists of
        either; a Value the module computed (e.g. a cached output) is not one. A Value reachable
        under two names (tied weights, a submodule stored twice) is one parameter, yielded
        under its first name, unless ``remove_duplicate`` is false (then under every name, as
        :meth:`state_dict` lists it); as ``torch.nn.Module.named_parameters``.
        """
        seen: set[int] | None = set() if remove_duplicate else None  # ids: linear time
        for name, attr in vars(self).items():
            yield from _named(attr, prefix + name, seen)

    def parameters(self) -> list[Value]:
        """All parameters, in the order of :meth:`named_parameters`."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self) -> None:
        """Set every parameter's gradient to ``0.0`` (leaf gradients accumulate otherwise)."""
        for p in self.parameters():
            p.grad = 0.0

    def num_parameters(self) -> int:
        """How many scalar parameters the module has (a tied one counts once)."""
        return len(self.parameters())

    def state_dict(self) -> dict[str, float]:
        """``{dotted name: value}`` of every parameter, as plain floats; a tied parameter under
        each of its names, as ``torch.nn.Module.state_dict``."""
        return {name: p.data for name, p in self.named_parameters(remove_duplicate=False)}

    def load_state_dict(self, state: dict[str, float]) -> None:
        """Copy values from a :meth:`state_dict` into the parameters, in place.

        Raises:
            KeyError: names are missing from ``state`` or unexpected in it (both listed).
            ValueError: two names of one tied parameter have different values.
            nn.checks.FieldError: (a ``TypeError`` and a ``ValueError``) a value is not a
                finite number (a bool, a string, nan, infinite); the message names the parameter.
        Nothing is changed when it raises.
        """
        state = mapping("state_dict", state)
        params = dict(self.named_parameters(remove_duplicate=False))
        missing = sorted(set(params) - set(state))
        unexpected = sorted(set(state) - set(params))
        if missing or unexpected:
            raise KeyError(f"state_dict does not fit this model: missing {missing[:5]}"
                           f"{'…' if len(missing) > 5 else ''}, unexpected {unexpected[:5]}"
                           f"{'…' if len(unexpected) > 5 else ''}")
        values = {name: real(name, state[name]) for name in params}  # all checked before any is set
        first: dict[int, str] = {}
        for name, p in params.items():
            other = first.setdefault(id(p), name)
            if values[other] != values[name]:
                raise ValueError(f"state_dict gives {values[other]} and {values[name]} to {other!r} and "
                                 f"{name!r}, which are one parameter (tied); they must agree")
        for name, p in params.items():
            p.data = values[name]

    def config(self) -> dict[str, Any]:
        """The constructor arguments that rebuild this module (for :meth:`save`)."""
        raise NotImplementedError(f"{type(self).__name__} does not define config()")

    def save(self, path: str | os.PathLike[str], extra: dict[str, Any] | None = None) -> None:
        """Write the module (its :meth:`config` and :meth:`state_dict`) to ``path`` as JSON with
        a format version, atomically (a temporary file, then a rename), so a crash never
        leaves a half-written model. ``extra`` (JSON-serialisable) is stored beside it, e.g.
        training progress."""
        document = {"format": "valuegrad-model", "format_version": FORMAT_VERSION,
                    "config": self.config(), "state": self.state_dict(), "extra": extra or {}}
        write_json_atomic(path, document)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Any:
        """Read a module written by :meth:`save` (``MLP.load(path)``).

        Raises:
            FileNotFoundError: no file at ``path``.
            ValueError: the file is not a valuegrad model, has another format version, or
                holds another kind of module than ``cls``.
        """
        return cls.from_document(read_model_document(path))

    @classmethod
    def from_document(cls, document: dict[str, Any]) -> Any:
        """Rebuild a module from the dictionary that :meth:`save` writes.

        Raises:
            ValueError: the dictionary does not describe a module of type ``cls``, or one with
                more than :data:`MAX_PARAMETERS` parameters (refused before it is built).
                A bad field raises :class:`~nn.checks.FieldError` (a ``ValueError``) naming it.
        """
        module_type, config = _checked_config(mapping("the model file", document).get("config", MISSING))
        if not issubclass(module_type, cls):
            raise ValueError(f"the model file holds a {module_type.__name__!r}, not a {cls.__name__}")
        state = mapping("state", document.get("state", MISSING))
        try:
            module = module_type(**config)
            module.load_state_dict(state)
        except FieldError as e:
            raise e.under("state") from None
        except (KeyError, TypeError) as e:
            raise ValueError(f"the model file does not describe a valid model: {e}") from None
        return module



def _checked_config(config: Any) -> tuple[type[Module], dict[str, Any]]:
    """The module type and constructor arguments of a model file's ``config``, every field
    checked, and the parameter count checked against :data:`MAX_PARAMETERS`."""
    config = dict(mapping("config", config))
    kind = config.pop("type", MISSING)
    module_type = _MODULE_TYPES.get(kind) if isinstance(kind, str) else None
    if module_type is None:
        raise FieldError("config.type", "one of " + ", ".join(map(repr, _MODULE_TYPES)), kind)
    arguments = inspect.signature(module_type).parameters
    for key, parameter in arguments.items():
        if key != "rng" and parameter.default is inspect.Parameter.empty and key not in config:
            raise FieldError(f"config.{key}", f"a field of a {kind}", MISSING)
    for key, value in config.items():
        field = f"config.{key}"
        if key in ("nin", "nout") and key in arguments:
            whole(field, value, 1, MAX_PARAMETERS)
        elif key == "nouts" and key in arguments:
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_PARAMETERS:
                raise FieldError(field, "a non-empty list of layer widths", value)
            for i, n in enumerate(value):
                whole(f"{field}.{i}", n, 1, MAX_PARAMETERS)
        elif key in ("activation", "output_activation") and key in arguments:
            choice(field, value, ACTIVATIONS)
        elif key == "init" and key in arguments:
            choice(field, value, INITS)
        else:
            raise FieldError(field, f"only the fields of a {kind} ({', '.join(arguments)})", value)
    sizes = [config["nin"], *config.get("nouts", [config.get("nout", 1)])]
    count = count_parameters(sizes)
    if count > MAX_PARAMETERS:
        raise ValueError(f"the model file describes a {kind} of {count} parameters; valuegrad reads "
                         f"models of at most {MAX_PARAMETERS}")
    return module_type, config


def _named(attr: object, name: str, seen: set[int] | None) -> Iterator[tuple[str, Value]]:
    """The parameters below ``attr``, skipping (when ``seen`` is a set) the Values and modules
    whose ids are in it already."""
    if seen is not None and isinstance(attr, (Value, Module)):
        if id(attr) in seen:
            return
        seen.add(id(attr))
    if isinstance(attr, Value):
        if attr.op is None:  # a leaf; a computed Value is not a parameter
            yield name, attr
    elif isinstance(attr, Module):
        for key, item in vars(attr).items():
            yield from _named(item, f"{name}.{key}", seen)
    elif isinstance(attr, (list, tuple)):
        for i, item in enumerate(attr):
            yield from _named(item, f"{name}.{i}", seen)


class Neuron(Module):
    """``act(w·x + b)``: one neuron with ``nin`` weights ``w`` and a bias ``b``.

    Args:
        nin: number of inputs (>= 1).
        activation: ``"relu"``, ``"tanh"``, ``"sigmoid"`` or ``"linear"``.
        rng: a ``random.Random`` or an ``int`` seed for the initial values (Python's global
            ``random`` if omitted, so ``random.seed(...)`` fixes them).
        init: ``"pytorch"`` (default): weights and bias uniform in ``[-1/√nin, 1/√nin]``,
            PyTorch's ``nn.Linear`` default (Kaiming uniform with a = √5 for the weights;
            He et al., 2015). ``"micrograd"``: weights uniform in ``[-1, 1]`` and bias 0, as
            micrograd's ``Neuron``, to reproduce its demo.

    Parameters are labelled ``w0 … w{nin-1}`` and ``b``.

    Calling it with a sequence of ``nin`` numbers or Values returns one Value. The products
    ``wᵢ·xᵢ`` and ``b`` are added by one ``sum`` node.

    Raises:
        ValueError: ``nin < 1``, an unknown activation or init, or a call with the wrong
            input length.
    """

    def __init__(self, nin: int, activation: str = "relu", rng: random.Random | int | None = None,
                 init: str = "pytorch") -> None:
        self.nin = _check_size("nin", nin)
        self.activation = _check_activation(activation)
        self.init = _check_init(init)
        source = _random(rng)
        bound = 1.0 / math.sqrt(nin) if init == "pytorch" else 1.0
        self.w = [Value(source.uniform(-bound, bound), f"w{i}") for i in range(nin)]
        self.b = Value(source.uniform(-bound, bound) if init == "pytorch" else 0.0, "b")

    def __call__(self, x: Sequence[Input]) -> Value:
        if len(x) != self.nin:
            raise ValueError(f"Neuron expected {self.nin} inputs, got {len(x)}")
        z = engine.sum([*[wi * xi for wi, xi in zip(self.w, x)], self.b])
        return activate(z, self.activation)

    def config(self) -> dict[str, Any]:
        return {"type": "Neuron", "nin": self.nin, "activation": self.activation, "init": self.init}

    def __repr__(self) -> str:
        return f"Neuron({self.nin}, activation={self.activation!r})"


class Layer(Module):
    """``nout`` neurons that all see the same ``nin`` inputs; returns a list of ``nout`` Values.

    Args:
        nin: inputs per neuron (>= 1). nout: number of neurons (>= 1).
        activation, rng, init: passed to each :class:`Neuron`.

    Raises:
        ValueError: a size < 1, an unknown activation, or a call with the wrong input length.
    """

    def __init__(self, nin: int, nout: int, activation: str = "relu",
                 rng: random.Random | int | None = None, init: str = "pytorch") -> None:
        self.nin = _check_size("nin", nin)
        self.nout = _check_size("nout", nout)
        self.activation = _check_activation(activation)
        self.init = _check_init(init)
        rng = _random(rng)
        self.neurons = [Neuron(nin, activation, rng, init) for _ in range(nout)]

    def __call__(self, x: Sequence[Input]) -> list[Value]:
        if len(x) != self.nin:
            raise ValueError(f"Layer expected {self.nin} inputs, got {len(x)}")
        return [n(x) for n in self.neurons]

    def config(self) -> dict[str, Any]:
        return {"type": "Layer", "nin": self.nin, "nout": self.nout, "activation": self.activation,
                "init": self.init}

    def __repr__(self) -> str:
        return f"Layer({self.nin}, {self.nout}, activation={self.activation!r})"


class MLP(Module):
    """A multilayer perceptron: ``Layer(nin, nouts[0])``, then ``Layer(nouts[0], nouts[1])``, …

    Args:
        nin: number of inputs (>= 1).
        nouts: the width of each layer, the last being the number of outputs (each >= 1).
        activation: the hidden layers' activation (default ``"relu"``).
        output_activation: the last layer's (default ``"linear"``: logits or scores).
        rng: a ``random.Random`` or an ``int`` seed for the initial values (Python's global
            ``random`` if omitted, so ``random.seed(...)`` fixes them).
        init: ``"pytorch"`` (default) or ``"micrograd"``; see :class:`Neuron`.

    Calling it with ``nin`` numbers or Values returns a list of ``nouts[-1]`` Values, always
    a list (even for one output).

    Raises:
        ValueError: a size < 1, no layers, an unknown activation, or a wrong input length.
    """

    def __init__(self, nin: int, nouts: Sequence[int], activation: str = "relu",
                 output_activation: str = "linear", rng: random.Random | int | None = None,
                 init: str = "pytorch") -> None:
        self.nin = _check_size("nin", nin)
        if isinstance(nouts, int) or not nouts:
            raise ValueError(f"nouts must be a non-empty list of layer widths, got {nouts!r}")
        self.nouts = [_check_size("every layer width", n) for n in nouts]
        self.activation = _check_activation(activation)
        self.output_activation = _check_activation(output_activation)
        self.init = _check_init(init)
        rng = _random(rng)
        sizes = [nin, *self.nouts]
        self.layers = [
            Layer(sizes[i], sizes[i + 1],
                  output_activation if i == len(self.nouts) - 1 else activation, rng, init)
            for i in range(len(self.nouts))
        ]

    def __call__(self, x: Sequence[Input]) -> list[Value]:
        if len(x) != self.nin:
            raise ValueError(f"MLP expected {self.nin} inputs, got {len(x)}")
        out: Sequence[Input] = x
        for layer in self.layers:
            out = layer(out)
        return list(out)  # type: ignore[arg-type]

    def config(self) -> dict[str, Any]:
        return {"type": "MLP", "nin": self.nin, "nouts": list(self.nouts),
                "activation": self.activation, "output_activation": self.output_activation,
                "init": self.init}

    def __repr__(self) -> str:
        return (f"MLP({self.nin}, {self.nouts}, activation={self.activation!r}, "
                f"output_activation={self.output_activation!r})")


def named_modules(module: Module, prefix: str = "") -> Iterator[tuple[str, Module]]:
    """Yield ``(dotted name, module)`` for every submodule below ``module``, outer first
    (``layers.0``, ``layers.0.neurons.0``, ...)."""
    for name, attr in vars(module).items():
        items = list(enumerate(attr)) if isinstance(attr, (list, tuple)) else [(None, attr)]
        for i, item in items:
            if isinstance(item, Module):
                full = f"{prefix}{name}" + (f".{i}" if i is not None else "")
                yield full, item
                yield from named_modules(item, full + ".")


def graph_groups(model: Module, root: Value) -> dict[Value, tuple[str, ...]]:
    """``{node: (layer, neuron)}`` for the nodes that ``model``'s neurons made in the graph of
    ``root`` (for :func:`engine.draw.draw`'s clusters and ``collapse``).

    A neuron's nodes are found from its parameters: its weights and bias, the products with
    its weights, the sum with its bias, and the activation of that sum. Each is tagged with the
    dotted names of the modules it sits in, outermost first.
    """
    paths: dict[str, tuple[str, ...]] = {}
    owner: dict[Value, str] = {}
    enclosing: list[str] = []
    for name, module in named_modules(model):
        enclosing = [e for e in enclosing if name.startswith(e + ".")] + [name]
        if isinstance(module, Neuron):
            paths[name] = tuple(enclosing)
            for p in module.parameters():
                owner[p] = name
    groups: dict[Value, tuple[str, ...]] = {}
    for node in engine.topological_order(root):
        found = [owner[p] for p in (node, *node.parents) if p in owner]
        if found:
            groups[node] = paths[found[0]]
        elif node.op is not None and len(node.parents) == 1:
            parent = node.parents[0]  # the activation of a neuron's sum
            if parent.op is not None and parent.op.name == "sum" and parent in groups:
                groups[node] = groups[parent]
    return groups


def draw_model(model: MLP, x: Sequence[Input], collapse: str | None = None, **options: Any) -> Any:
    """Draw ``model``'s graph on one input after a backward pass from the sum of its outputs,
    its layers and neurons in clusters, or as a box each with ``collapse="neuron"`` or
    ``"layer"``. ``options`` go to :func:`engine.draw.draw`.

    Raises:
        ValueError: an unknown ``collapse`` or a wrong input length.
        ImportError: the graphviz package is not installed.
    """
    from engine.draw import draw

    levels = {None: None, "layer": 0, "neuron": 1}
    if collapse not in levels:
        raise ValueError(f"collapse must be 'neuron', 'layer' or None, got {collapse!r}")
    outputs = model([v if isinstance(v, Value) else Value(v, f"x{i}") for i, v in enumerate(x)])
    root = outputs[0] if len(outputs) == 1 else engine.sum(outputs)
    root.backward()
    return draw(root, parameters=model.parameters(), groups=graph_groups(model, root),
                collapse=levels[collapse], **options)


def read_model_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a model file written by :meth:`MLP.save`.

    A UTF-8 byte order mark at the start is skipped. The file is refused before it is parsed
    when it is larger than :data:`MAX_FILE_BYTES` or nests deeper than :data:`MAX_JSON_DEPTH`,
    and while parsing when a number is longer than :data:`MAX_NUMBER_CHARS` characters.
    ``NaN`` and ``Infinity`` parse (so that the field holding one is named when it is checked).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: not JSON, too large or deep, not a valuegrad model, an unsupported format
            version, or an ``extra`` that is not an object.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no model file at {path}")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"{path} is {path.stat().st_size} bytes; a model file is at most {MAX_FILE_BYTES}")
    try:
        text = path.read_bytes().decode("utf-8-sig")
        depth = _json_depth(text)
        if depth > MAX_JSON_DEPTH:
            raise ValueError(f"it nests {depth} levels deep, at most {MAX_JSON_DEPTH} are read")
        document = json.loads(text, parse_int=_number(int), parse_float=_number(float))
    except ValueError as e:  # (also a JSONDecodeError, or a UnicodeDecodeError: not UTF-8)
        raise ValueError(f"{path} is not a valuegrad model (not JSON: {e})") from None
    if not isinstance(document, dict) or document.get("format") != "valuegrad-model":
        raise ValueError(f"{path} is not a valuegrad model file")
    if document.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has model format version {document.get('format_version')!r}; "
                         f"this valuegrad reads version {FORMAT_VERSION}")
    document["extra"] = mapping("extra", document.get("extra", {}))
    return document


def _json_depth(text: str) -> int:
    """How deep the brackets of JSON ``text`` nest (strings, with their escapes, skipped)."""
    depth = deepest = 0
    for token in re.finditer(r'"(?:[^"\\]|\\.)*"|[\[{]|[\]}]', text):
        bracket = token.group()
        if bracket in ("[", "{"):
            depth += 1
            deepest = max(deepest, depth)
        elif bracket in ("]", "}"):
            depth -= 1
    return deepest


def _number(kind: type) -> Any:
    def parse(text: str) -> Any:
        if len(text) > MAX_NUMBER_CHARS:
            raise ValueError(f"a number of {len(text)} characters, at most {MAX_NUMBER_CHARS} are read")
        return kind(text)

    return parse


def write_json_atomic(path: str | os.PathLike[str], document: Any) -> None:
    """Write ``document`` as JSON to ``path`` through a temporary file in the same folder and
    an ``os.replace``, so readers see the old file or the new one, never half of one."""
    try:
        text = json.dumps(document, indent=1, allow_nan=False) + "\n"
    except ValueError:
        raise ValueError(f"not writing {path}: it would hold nan or infinite numbers, which JSON "
                         f"cannot represent") from None
    write_text_atomic(path, text)


def write_text_atomic(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (temporary file in the same folder, then rename)."""
    write_atomic(path, text.encode("utf-8"))


_MODULE_TYPES: dict[str, type[Module]] = {"Neuron": Neuron, "Layer": Layer, "MLP": MLP}
