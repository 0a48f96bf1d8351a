//! Every fixture in `tests/models` scored through [`Model::score`] gives what onnxruntime in
//! Python gave (`tests/models/expected.json`, written by `make_fixtures.py`), for every output;
//! the bad fixtures fail with the right error kinds.

use std::path::PathBuf;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float32Array, Float64Array, Int64Array};
use datafusion::arrow::datatypes::{Float32Type, Float64Type, Int64Type};
use serde_json::Value;

use crate::signature::Element;
use crate::{Model, ModelErrorKind, SessionOptions};

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/models")
}

fn load(file: &str, output: Option<&str>) -> Result<Arc<Model>, crate::ModelError> {
    let bytes = std::fs::read(fixtures().join(file)).expect("fixture");
    let options = SessionOptions { output: output.map(str::to_string), threads: Some(1), ..Default::default() };
    Model::load(file, 1, bytes.into(), options)
}

/// One SQL argument column per input column, in graph order.
fn arguments(model: &Model, inputs: &serde_json::Map<String, Value>) -> (Vec<ArrayRef>, usize) {
    let mut args = Vec::new();
    let mut rows = 0;
    for input in &model.signature().inputs {
        let values = inputs[&input.name].as_array().expect("rows");
        rows = values.len();
        for j in 0..input.width {
            let col: Vec<f64> = values
                .iter()
                .map(|r| match r {
                    Value::Array(a) => a[j].as_f64().expect("number"),
                    v => v.as_f64().expect("number"),
                })
                .collect();
            let array: ArrayRef = match input.element {
                Element::F32 => Arc::new(Float32Array::from(col.iter().map(|v| *v as f32).collect::<Vec<_>>())),
                Element::F64 => Arc::new(Float64Array::from(col)),
                Element::I64 | Element::I32 => Arc::new(Int64Array::from(col.iter().map(|v| *v as i64).collect::<Vec<_>>())),
            };
            args.push(datafusion::arrow::compute::cast(&array, &input.element.data_type()).expect("cast"));
        }
    }
    (args, rows)
}

fn numbers(a: &dyn Array) -> Vec<f64> {
    if let Some(f) = a.as_primitive_opt::<Float32Type>() {
        f.values().iter().map(|v| *v as f64).collect()
    } else if let Some(f) = a.as_primitive_opt::<Float64Type>() {
        f.values().to_vec()
    } else {
        a.as_primitive::<Int64Type>().values().iter().map(|v| *v as f64).collect()
    }
}

fn expected_row(v: &Value) -> Vec<f64> {
    match v {
        Value::Array(a) => a.iter().map(|x| x.as_f64().expect("number")).collect(),
        Value::Object(m) => {
            // ZipMap: {class: probability}, classes as strings; nowdb orders by class.
            let mut kv: Vec<(i64, f64)> = m.iter().map(|(k, v)| (k.parse().expect("int class"), v.as_f64().expect("p"))).collect();
            kv.sort_by_key(|p| p.0);
            kv.into_iter().map(|p| p.1).collect()
        }
        v => vec![v.as_f64().expect("number")],
    }
}

#[test]
fn fixtures_match_onnxruntime_in_python() {
    let expected: Value = serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).expect("expected.json")).expect("json");
    let models = expected["models"].as_object().expect("models");
    assert!(models.len() >= 8, "fixtures missing");
    for (file, spec) in models {
        for output in spec["outputs"].as_array().expect("outputs") {
            let out_name = output["name"].as_str().expect("name");
            let model = load(file, Some(out_name)).unwrap_or_else(|e| panic!("{file}: {e}"));
            for case in spec["cases"].as_array().expect("cases") {
                let (args, rows) = arguments(&model, case["inputs"].as_object().expect("inputs"));
                let got = model.score(&args, rows).unwrap_or_else(|e| panic!("{file}/{out_name}: {e}"));
                assert_eq!(got.len(), rows);
                let want = case["outputs"][out_name].as_array().expect("outputs");
                for (r, w) in want.iter().enumerate() {
                    let g = match got.as_list_opt::<i32>() {
                        Some(list) => numbers(list.value(r).as_ref()),
                        None => vec![numbers(got.as_ref())[r]],
                    };
                    let w = expected_row(w);
                    assert_eq!(g.len(), w.len(), "{file}/{out_name} row {r}");
                    for (a, b) in g.iter().zip(&w) {
                        assert!((a - b).abs() <= 1e-6 * b.abs().max(1.0), "{file}/{out_name} row {r}: {a} != {b}");
                    }
                }
            }
        }
    }
}

#[test]
fn default_output_is_the_first_float_tensor_or_the_zipmap() {
    assert_eq!(load("multi_output.onnx", None).unwrap().signature().output.name, "scores");
    assert_eq!(load("classifier.onnx", None).unwrap().signature().output.name, "probabilities");
    assert_eq!(load("classifier_zipmap.onnx", None).unwrap().signature().output.name, "output_probability");
    let two = load("two_inputs.onnx", None).unwrap();
    assert_eq!(two.signature().arity(), 3);
    assert_eq!(two.signature().inputs_text(), "a: real[N, 2], b: real[N, 1]");
}

#[test]
fn nulls_skip_the_model_and_non_finite_arguments_are_refused() {
    let model = load("linear.onnx", None).unwrap();
    let a: ArrayRef = Arc::new(Float32Array::from(vec![Some(0.5), None, Some(3.25)]));
    let b: ArrayRef = Arc::new(Float32Array::from(vec![1.0, 1.0, -0.5]));
    let c: ArrayRef = Arc::new(Float32Array::from(vec![-2.0, 1.0, 0.0]));
    let out = model.score(&[a, b.clone(), c.clone()], 3).unwrap();
    let out = out.as_primitive::<Float32Type>();
    assert_eq!(out.len(), 3);
    assert!(out.is_null(1));
    assert_eq!(out.value(0), -4.5);
    assert_eq!(out.value(2), 2.375);
    assert_eq!(model.stats().snapshot().rows, 2);
    let nan: ArrayRef = Arc::new(Float32Array::from(vec![f32::NAN, 1.0, 1.0]));
    let err = model.score(&[nan, b, c], 3).unwrap_err();
    assert_eq!(err.kind(), ModelErrorKind::InvalidParameterValue, "{err}");
}

#[test]
fn bad_models_fail_with_their_kind() {
    let kind = |f: &str| load(f, None).map(|_| ()).unwrap_err().kind();
    assert_eq!(kind("not_onnx.onnx"), ModelErrorKind::InvalidParameterValue);
    assert_eq!(kind("truncated.onnx"), ModelErrorKind::InvalidParameterValue);
    assert_eq!(kind("unsupported_op.onnx"), ModelErrorKind::FeatureNotSupported);
    assert_eq!(kind("string_input.onnx"), ModelErrorKind::FeatureNotSupported);
    assert_eq!(kind("rank3_input.onnx"), ModelErrorKind::FeatureNotSupported);
    assert_eq!(load("linear.onnx", Some("nope")).map(|_| ()).unwrap_err().kind(), ModelErrorKind::InvalidParameterValue);
    // Loads, but fails at run time for a batch the graph's Reshape rejects: that call only.
    let model = load("runtime_shape_error.onnx", None).unwrap();
    let col = |v: Vec<f32>| Arc::new(Float32Array::from(v)) as ArrayRef;
    let three = [col(vec![1.0, 4.0, 7.0]), col(vec![2.0, 5.0, 8.0]), col(vec![3.0, 6.0, 9.0])];
    assert_eq!(model.score(&three, 3).unwrap_err().kind(), ModelErrorKind::Internal);
    let two = [col(vec![1.0, 4.0]), col(vec![2.0, 5.0]), col(vec![3.0, 6.0])];
    assert_eq!(numbers(model.score(&two, 2).unwrap().as_ref()), vec![6.0, 15.0]);
}

#[test]
fn cuda_is_refused_clearly_where_missing_and_auto_falls_back() {
    let bytes = std::fs::read(fixtures().join("linear.onnx")).unwrap();
    let cuda = SessionOptions { device: crate::Device::Cuda, ..Default::default() };
    match Model::load("m", 1, bytes.clone().into(), cuda) {
        Ok(m) => assert_eq!(m.session().device(), crate::Device::Cuda),
        Err(e) => assert_eq!(e.kind(), ModelErrorKind::FeatureNotSupported, "{e}"),
    }
    let auto = SessionOptions { device: crate::Device::Auto, ..Default::default() };
    let m = Model::load("m", 1, bytes.into(), auto).unwrap();
    assert!(matches!(m.session().device(), crate::Device::Cpu | crate::Device::Cuda));
}
