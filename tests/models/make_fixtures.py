#!/usr/bin/env python3
"""Generate the small ONNX model fixtures used by nowdb's model tests.

Run from the repository root (after installing tests/models/requirements.txt):

    .venv/bin/python tests/models/make_fixtures.py

Everything is written next to this script:

* ``*.onnx``       -- the fixtures (good models and deliberately bad files);
* ``expected.json`` -- for each good model its input/output signature and test
  cases (input rows plus the outputs onnxruntime computes for them), and for
  each bad fixture what onnxruntime says when loading / running it.

The script is deterministic: every weight is written out below, the sklearn
training data comes from a fixed seed, and all free-form metadata fields
(producer, doc strings, ...) are set to fixed values, so running it twice
yields byte-identical files.

All hand-built models use opset 17 of the default (ai.onnx) domain and IR
version 8, so that older onnxruntime releases can load them too. The sklearn
models are converted with skl2onnx at target_opset {'': 17, 'ai.onnx.ml': 3}.
Every model's first dimension is the dynamic batch dimension named "N".
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))

OPSET = 17  # ai.onnx opset for every model
ML_OPSET = 3  # ai.onnx.ml opset for the skl2onnx models
IR_VERSION = 8  # the IR version that goes with opset 17
BATCH = "N"  # name of the dynamic batch dimension

# Fixed metadata so the serialized bytes never depend on the environment.
PRODUCER_NAME = "nowdb-tests"
PRODUCER_VERSION = "1"

FLOAT = TensorProto.FLOAT
DOUBLE = TensorProto.DOUBLE
INT64 = TensorProto.INT64
STRING = TensorProto.STRING


# --------------------------------------------------------------------------
# Helpers for hand-built models
# --------------------------------------------------------------------------


def vi(name, elem_type, shape):
    """A tensor ValueInfo; ``shape`` may contain the string "N" (dim_param)."""
    return helper.make_tensor_value_info(name, elem_type, shape)


def init(name, array):
    """An initializer (constant weight) from a numpy array."""
    return numpy_helper.from_array(np.asarray(array), name=name)


def make_model(name, nodes, inputs, outputs, initializers=(), extra_opsets=(), check=True):
    """Assemble a graph into a model with fixed opset, IR version and metadata."""
    graph = helper.make_graph(list(nodes), name, list(inputs), list(outputs), list(initializers))
    opsets = [helper.make_opsetid("", OPSET)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    model = helper.make_model(
        graph,
        opset_imports=opsets,
        ir_version=IR_VERSION,
        producer_name=PRODUCER_NAME,
        producer_version=PRODUCER_VERSION,
    )
    if check:
        onnx.checker.check_model(model)
    return model


def save(model, filename):
    """Serialize a ModelProto to ``filename`` next to this script."""
    data = model.SerializeToString(deterministic=True)
    with open(os.path.join(HERE, filename), "wb") as f:
        f.write(data)
    return data


# --------------------------------------------------------------------------
# Good, hand-built models
# --------------------------------------------------------------------------


def linear():
    """y[N,1] = x[N,3] @ [[0.5], [-1.0], [2.0]] + 0.25"""
    return make_model(
        "linear",
        nodes=[
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["y"]),
        ],
        inputs=[vi("x", FLOAT, [BATCH, 3])],
        outputs=[vi("y", FLOAT, [BATCH, 1])],
        initializers=[
            init("W", np.array([[0.5], [-1.0], [2.0]], dtype=np.float32)),
            init("B", np.array([0.25], dtype=np.float32)),
        ],
    )


def logistic():
    """p[N] = sigmoid(features[N,3] @ [1.0, 0.5, -0.25] - 1.0)

    MatMul of a [N,3] matrix with a rank-1 [3] vector already yields rank 1.
    """
    return make_model(
        "logistic",
        nodes=[
            helper.make_node("MatMul", ["features", "W"], ["z0"]),
            helper.make_node("Add", ["z0", "B"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p"]),
        ],
        inputs=[vi("features", FLOAT, [BATCH, 3])],
        outputs=[vi("p", FLOAT, [BATCH])],
        initializers=[
            init("W", np.array([1.0, 0.5, -0.25], dtype=np.float32)),
            init("B", np.array(-1.0, dtype=np.float32)),  # scalar, broadcasts
        ],
    )


# Weights of multi_output (a tiny 3-class "classifier" over 2 features).
MULTI_W = np.array([[1.0, -1.0, 0.5], [0.5, 2.0, -1.0]], dtype=np.float32)
MULTI_B = np.array([0.1, -0.2, 0.3], dtype=np.float32)


def multi_output():
    """Three outputs, in this order:

    label[N]    int64   = ArgMax(scores, axis=1, keepdims=0)
    scores[N,3] float32 = Softmax(x @ MULTI_W + MULTI_B, axis=1)
    total[N,1]  float32 = ReduceSum(x, axes=[1], keepdims=1)
    """
    return make_model(
        "multi_output",
        nodes=[
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "B"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
            helper.make_node("ArgMax", ["scores"], ["label"], axis=1, keepdims=0),
            # Opset >= 13: ReduceSum takes its axes as an input tensor.
            helper.make_node("ReduceSum", ["x", "axes"], ["total"], keepdims=1),
        ],
        inputs=[vi("x", FLOAT, [BATCH, 2])],
        outputs=[
            vi("label", INT64, [BATCH]),
            vi("scores", FLOAT, [BATCH, 3]),
            vi("total", FLOAT, [BATCH, 1]),
        ],
        initializers=[
            init("W", MULTI_W),
            init("B", MULTI_B),
            init("axes", np.array([1], dtype=np.int64)),
        ],
    )


def two_inputs():
    """y[N,1] = a[N,2] @ [[1.0], [2.0]] + 3.0 * b[N,1]   (inputs in order a, b)"""
    return make_model(
        "two_inputs",
        nodes=[
            helper.make_node("MatMul", ["a", "W"], ["aw"]),
            helper.make_node("Mul", ["b", "three"], ["b3"]),
            helper.make_node("Add", ["aw", "b3"], ["y"]),
        ],
        inputs=[vi("a", FLOAT, [BATCH, 2]), vi("b", FLOAT, [BATCH, 1])],
        outputs=[vi("y", FLOAT, [BATCH, 1])],
        initializers=[
            init("W", np.array([[1.0], [2.0]], dtype=np.float32)),
            init("three", np.array(3.0, dtype=np.float32)),
        ],
    )


def double_model():
    """y[N] float64 = x[:,0] * x[:,1] for x[N,2] float64.

    Gather with a scalar index drops the gathered axis, so each column is [N].
    """
    return make_model(
        "double_model",
        nodes=[
            helper.make_node("Gather", ["x", "i0"], ["c0"], axis=1),
            helper.make_node("Gather", ["x", "i1"], ["c1"], axis=1),
            helper.make_node("Mul", ["c0", "c1"], ["y"]),
        ],
        inputs=[vi("x", DOUBLE, [BATCH, 2])],
        outputs=[vi("y", DOUBLE, [BATCH])],
        initializers=[
            init("i0", np.array(0, dtype=np.int64)),
            init("i1", np.array(1, dtype=np.int64)),
        ],
    )


def int_input():
    """y[N,1] float32 = Cast(x[N,2] int64 -> float) @ [[1.0], [1.0]]"""
    return make_model(
        "int_input",
        nodes=[
            helper.make_node("Cast", ["x"], ["xf"], to=FLOAT),
            helper.make_node("MatMul", ["xf", "W"], ["y"]),
        ],
        inputs=[vi("x", INT64, [BATCH, 2])],
        outputs=[vi("y", FLOAT, [BATCH, 1])],
        initializers=[init("W", np.array([[1.0], [1.0]], dtype=np.float32))],
    )


# --------------------------------------------------------------------------
# sklearn models (via skl2onnx)
# --------------------------------------------------------------------------


def training_data():
    """200 deterministic samples with 3 features; label = x0 + 2*x1 - x2 > 0."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((200, 3))
    y = (X[:, 0] + 2 * X[:, 1] - X[:, 2] > 0).astype(np.int64)
    return X, y


def fix_sklearn_model(model, name):
    """Normalise a skl2onnx model: IR 8, batch dim named "N", fixed metadata.

    skl2onnx names the graph with a random UUID, so the graph gets a fixed name. It leaves the batch dimension
    of FloatTensorType([None, 3]) unnamed; every fixture names it "N".
    Sequence/map outputs (ZipMap) have no tensor shape and are left alone.

    The opset imports are left as skl2onnx chose them: target_opset is an upper
    bound and skl2onnx may lower it to what its nodes need (skl2onnx 1.20 for
    this LogisticRegression: ai.onnx 17 + ai.onnx.ml 1 without ZipMap, ai.onnx
    9 + ai.onnx.ml 1 with ZipMap).
    """
    model.graph.name = name
    # skl2onnx collects the opset imports in a set, so their order depends on
    # Python's hash seed; sort them by domain ("" first) for stable bytes.
    # skl2onnx 1.20 also lists ai.onnx twice (same version) for the
    # no-ZipMap model; keep each domain once.
    opsets = sorted(set((o.domain, o.version) for o in model.opset_import))
    domains = [d for d, _ in opsets]
    assert len(domains) == len(set(domains)), f"conflicting opset versions: {opsets}"
    del model.opset_import[:]
    model.opset_import.extend(helper.make_opsetid(d, v) for d, v in opsets)
    model.ir_version = IR_VERSION
    model.producer_name = PRODUCER_NAME
    model.producer_version = PRODUCER_VERSION
    model.domain = ""
    model.model_version = 0
    model.doc_string = ""
    model.graph.doc_string = ""
    for value in list(model.graph.input) + list(model.graph.output):
        if value.type.HasField("tensor_type"):
            dims = value.type.tensor_type.shape.dim
            if len(dims) > 0:
                dims[0].Clear()
                dims[0].dim_param = BATCH
    onnx.checker.check_model(model)
    return model


def classifiers():
    """Binary LogisticRegression, converted twice: without and with ZipMap.

    Returns (model_without_zipmap, model_with_zipmap, X_train).
    """
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType
    from sklearn.linear_model import LogisticRegression

    X, y = training_data()
    clf = LogisticRegression(random_state=0).fit(X, y)  # lbfgs: deterministic
    target = {"": OPSET, "ai.onnx.ml": ML_OPSET}
    initial_types = [("x", FloatTensorType([None, 3]))]

    plain = convert_sklearn(
        clf,
        initial_types=initial_types,
        target_opset=target,
        options={id(clf): {"zipmap": False}},
    )
    zipmap = convert_sklearn(clf, initial_types=initial_types, target_opset=target)
    return fix_sklearn_model(plain, "classifier"), fix_sklearn_model(zipmap, "classifier_zipmap"), X


# --------------------------------------------------------------------------
# Bad fixtures
# --------------------------------------------------------------------------


def unsupported_op():
    """A well-formed graph whose only node is com.example:Frobnicate (unknown)."""
    return make_model(
        "unsupported_op",
        nodes=[helper.make_node("Frobnicate", ["x"], ["y"], domain="com.example")],
        inputs=[vi("x", FLOAT, [BATCH, 3])],
        outputs=[vi("y", FLOAT, [BATCH, 3])],
        extra_opsets=[("com.example", 1)],
    )


def string_input():
    """A string tensor input (non-numeric) passed through Identity."""
    return make_model(
        "string_input",
        nodes=[helper.make_node("Identity", ["s"], ["y"])],
        inputs=[vi("s", STRING, [BATCH, 1])],
        outputs=[vi("y", STRING, [BATCH, 1])],
    )


def rank3_input():
    """Input of rank 3 ([N,2,2]), i.e. neither [N] nor [N,k]; y[N] = sum over axes 1,2."""
    return make_model(
        "rank3_input",
        nodes=[helper.make_node("ReduceSum", ["x", "axes"], ["y"], keepdims=0)],
        inputs=[vi("x", FLOAT, [BATCH, 2, 2])],
        outputs=[vi("y", FLOAT, [BATCH])],
        initializers=[init("axes", np.array([1, 2], dtype=np.int64))],
    )


def runtime_shape_error():
    """Loads fine but fails at run time unless 3*N is divisible by 2.

    x[N,3] is reshaped to the constant shape [2,-1] and summed over axis 1.
    With N=2 that yields the two row sums ([2] == [N]); with N=3 the 9 elements
    cannot be reshaped to [2,-1], so onnxruntime raises while running.
    """
    return make_model(
        "runtime_shape_error",
        nodes=[
            helper.make_node("Reshape", ["x", "shape"], ["r"]),
            helper.make_node("ReduceSum", ["r", "axes"], ["y"], keepdims=0),
        ],
        inputs=[vi("x", FLOAT, [BATCH, 3])],
        outputs=[vi("y", FLOAT, [BATCH])],  # declared [N]; really [2]
        initializers=[
            init("shape", np.array([2, -1], dtype=np.int64)),
            init("axes", np.array([1], dtype=np.int64)),
        ],
    )


# --------------------------------------------------------------------------
# Running models with onnxruntime and recording the results
# --------------------------------------------------------------------------

# ONNX element type -> (numpy dtype, name used in expected.json)
ELEM = {
    FLOAT: (np.float32, "float32"),
    DOUBLE: (np.float64, "float64"),
    INT64: (np.int64, "int64"),
    STRING: (np.object_, "string"),
}


def session(path_or_bytes, quiet=False):
    """A CPU-only onnxruntime session; ``quiet`` silences ORT's own error log
    (used for the bad fixtures, whose errors are caught and recorded)."""
    opts = ort.SessionOptions()
    if quiet:
        opts.log_severity_level = 4  # fatal only
    return ort.InferenceSession(path_or_bytes, sess_options=opts, providers=["CPUExecutionProvider"])


def describe_value(value):
    """Signature of a graph input/output as recorded in expected.json.

    Tensors: {"name", "type": "float32"|"float64"|"int64"|"string",
              "shape": [..] with "N" for the batch dim}.
    Others (ZipMap's output): {"name", "type": "seq(map(int64,float32))",
              "shape": null}.
    """
    t = value.type
    if t.HasField("tensor_type"):
        shape = [d.dim_param if d.dim_param else d.dim_value for d in t.tensor_type.shape.dim]
        return {"name": value.name, "type": ELEM[t.tensor_type.elem_type][1], "shape": shape}
    if t.HasField("sequence_type") and t.sequence_type.elem_type.HasField("map_type"):
        m = t.sequence_type.elem_type.map_type
        key = ELEM[m.key_type][1]
        val = ELEM[m.value_type.tensor_type.elem_type][1]
        return {"name": value.name, "type": f"seq(map({key},{val}))", "shape": None}
    raise ValueError(f"unsupported value type for {value.name}: {t}")


def py(v):
    """A numpy scalar as a plain Python value (float32 -> exact Python float)."""
    if isinstance(v, (np.floating, float)):
        return float(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    raise TypeError(type(v))


def per_row(array, declared_shape):
    """Split a batch output into one JSON value per row.

    [N] and [N,1] -> a scalar per row; [N,k] -> a list of k values per row.
    """
    arr = np.asarray(array)
    if len(declared_shape) == 1 or (len(declared_shape) == 2 and declared_shape[1] == 1):
        return [py(v) for v in arr.reshape(arr.shape[0])]
    return [[py(v) for v in row] for row in arr]


def run_case(sess, model, rows):
    """Run one test case; ``rows`` maps input name -> list of rows."""
    feeds = {}
    for value in model.graph.input:
        dtype = ELEM[value.type.tensor_type.elem_type][0]
        feeds[value.name] = np.array(rows[value.name], dtype=dtype)
    results = sess.run(None, feeds)
    outputs = {}
    for value, result in zip(model.graph.output, results):
        desc = describe_value(value)
        if desc["shape"] is None:
            # ZipMap: a list of {class: probability}; JSON keys are strings.
            outputs[value.name] = [{str(k): py(np.float32(p)) for k, p in sorted(m.items())} for m in result]
        else:
            outputs[value.name] = per_row(result, desc["shape"])
    return {"inputs": rows, "outputs": outputs}


def error_message(exc, filename):
    """First line of an onnxruntime exception, with the absolute path stripped."""
    msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return msg.replace(os.path.join(HERE, filename), filename)


def main():
    good = {}  # filename -> (model, {case name: rows})

    # Simple inputs whose values are exactly representable in float32.
    rows3 = [[0.5, 1.0, -2.0], [3.25, -0.5, 0.0], [-1.0, 2.0, 0.25], [0.0, 0.0, 0.0], [1.5, -3.0, 4.0]]
    rows2 = [[0.5, 1.0], [-2.0, 3.25], [1.5, -0.5], [0.0, 0.0], [4.0, 2.0]]
    good["linear.onnx"] = (linear(), {"x": rows3})
    good["logistic.onnx"] = (logistic(), {"features": rows3})
    good["multi_output.onnx"] = (multi_output(), {"x": rows2})
    good["two_inputs.onnx"] = (
        two_inputs(),
        {"a": rows2, "b": [[1.0], [-0.5], [0.25], [0.0], [-2.0]]},
    )
    good["double_model.onnx"] = (double_model(), {"x": rows2})
    good["int_input.onnx"] = (int_input(), {"x": [[1, 2], [-3, 4], [0, 0], [100, -7], [5, 5]]})

    plain, zipmap, X = classifiers()
    # Classifier inputs: training rows rounded to multiples of 1/8, so they
    # stay in the training distribution yet are exactly representable.
    clf_rows = (np.round(X[:5] * 8) / 8 + 0.0).tolist()  # + 0.0 turns -0.0 into 0.0
    good["classifier.onnx"] = (plain, {"x": clf_rows})
    good["classifier_zipmap.onnx"] = (zipmap, {"x": clf_rows})

    expected = {
        "_format": (
            "models: per good fixture its inputs/outputs (type, shape with 'N' the dynamic batch dim; "
            "shape null for non-tensor outputs) and test cases: input rows per input name, and the "
            "onnxruntime outputs per row ([N] and [N,1] -> scalar, [N,k] -> list of k; ZipMap -> "
            "{class: probability} with the class as a string key). bad: per bad fixture the first line "
            "of onnxruntime's error when loading (null if it loads) and, where relevant, when running."
        ),
        "generated_with": {
            "onnx": onnx.__version__,
            "onnxruntime": ort.__version__,
            "opset": OPSET,
            "ai.onnx.ml_opset": ML_OPSET,
            "ir_version": IR_VERSION,
        },
        "models": {},
        "bad": {},
    }

    for filename, (model, rows) in good.items():
        save(model, filename)
        sess = session(os.path.join(HERE, filename))
        n = len(next(iter(rows.values())))
        one_row = {name: r[:1] for name, r in rows.items()}
        expected["models"][filename] = {
            "inputs": [describe_value(v) for v in model.graph.input],
            "outputs": [describe_value(v) for v in model.graph.output],
            "cases": [
                dict(name=f"{n}_rows", **run_case(sess, model, rows)),
                dict(name="1_row", **run_case(sess, model, one_row)),
            ],
        }

    # ---- bad fixtures ----
    with open(os.path.join(HERE, "not_onnx.onnx"), "wb") as f:
        f.write(b"this is not an onnx model\n")
    linear_bytes = open(os.path.join(HERE, "linear.onnx"), "rb").read()
    with open(os.path.join(HERE, "truncated.onnx"), "wb") as f:
        f.write(linear_bytes[: len(linear_bytes) // 2])
    save(unsupported_op(), "unsupported_op.onnx")
    save(string_input(), "string_input.onnx")
    save(rank3_input(), "rank3_input.onnx")
    save(runtime_shape_error(), "runtime_shape_error.onnx")

    notes = {
        "not_onnx.onnx": "a text file, not a protobuf: fails to load",
        "truncated.onnx": "the first half of linear.onnx: fails to load",
        "unsupported_op.onnx": "unknown op com.example:Frobnicate: fails to load",
        "string_input.onnx": "loads; input 's' is a string tensor [N,1] (non-numeric)",
        "rank3_input.onnx": "loads; input 'x' is float32 [N,2,2] (neither [N] nor [N,k])",
        "runtime_shape_error.onnx": (
            "loads; a 3-row batch fails at run time (Reshape of 9 elements to [2,-1]); a 2-row batch works"
        ),
    }
    for filename, note in notes.items():
        entry = {"note": note, "load_error": None}
        try:
            sess = session(os.path.join(HERE, filename), quiet=True)
        except Exception as exc:  # noqa: BLE001 - any load failure is recorded
            entry["load_error"] = error_message(exc, filename)
            sess = None
        if sess is not None:
            model = onnx.load(os.path.join(HERE, filename))
            entry["inputs"] = [describe_value(v) for v in model.graph.input]
            entry["outputs"] = [describe_value(v) for v in model.graph.output]
        if filename == "runtime_shape_error.onnx":
            bad_rows = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]
            try:
                sess.run(None, {"x": np.array(bad_rows, dtype=np.float32)})
                entry["run_error"] = None
            except Exception as exc:  # noqa: BLE001
                entry["run_error"] = error_message(exc, filename)
            entry["failing_input"] = {"x": bad_rows}
            ok_rows = bad_rows[:2]
            y = sess.run(None, {"x": np.array(ok_rows, dtype=np.float32)})[0]
            entry["working_case"] = {"inputs": {"x": ok_rows}, "outputs": {"y": per_row(y, [BATCH])}}
        expected["bad"][filename] = entry

    with open(os.path.join(HERE, "expected.json"), "w", encoding="utf-8") as f:
        json.dump(expected, f, indent=2)
        f.write("\n")

    for name in sorted(os.listdir(HERE)):
        if name.endswith(".onnx") or name == "expected.json":
            print(f"{os.path.getsize(os.path.join(HERE, name)):6d}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
