using HwGen.Core;

namespace HwGen.Tests.Support;

/// <summary>The options of ONNX Runtime's <c>quantize_static</c> that change the layout it writes.</summary>
/// <param name="Int8Activations">activation_type QInt8 (with ActivationSymmetric: zero point 0) instead of QUInt8 (asymmetric).</param>
/// <param name="ReduceRange">reduce_range: 7-bit weights, [-64, 63].</param>
/// <param name="Opset">the model's default-domain opset (ONNX Runtime keeps the model's, at least 13; 19 and 21 change Q/DQ's schema).</param>
/// <param name="ContribQdq">extra option UseQDQContribOps: QuantizeLinear/DequantizeLinear in domain com.microsoft.</param>
public sealed record OrtOptions(bool Int8Activations = false, bool ReduceRange = false, long Opset = 13, bool ContribQdq = false);

/// <summary>
/// Models in the exact layouts ONNX Runtime's static QDQ quantizer writes (onnxruntime/python/tools/quantization: qdq_quantizer.py,
/// operators/): names as it gives them (<c>W_quantized</c>, <c>W_scale</c>, <c>W_zero_point</c>, <c>x_QuantizeLinear_Output</c>),
/// symmetric int8 weights per output channel (DequantizeLinear axis 0 for Gemm with transB, 1 for MatMul) with zero-point vectors,
/// a Gemm's bias as an int32 initializer at scale sx·sw[j] behind DequantizeLinear (int32 zero points, axis 0), an Add's constant
/// quantized like an activation (per tensor), ReLU removed (its output range taken by the quantizer before it: zero point 0 for
/// uint8), LayerNormalization's scale as int8 and its bias as int32 behind DequantizeLinear, and Softmax's output at scale 1/256.
/// Scales are calibrated on a float forward pass of random rows, as quantize_static's MinMax calibrator does.
/// </summary>
public static class OrtLayouts
{
    /// <summary>Random rows in [-1, 1] for the models below.</summary>
    public static Tensor Input(int seed, params int[] shape) =>
        new(DType.Float32, shape, QdqModels.Input(seed, shape[..^1].Aggregate(1, (a, d) => a * d), shape[^1]).Data);

    sealed class Writer(OnnxBuilder b, OrtOptions o)
    {
        public readonly OnnxBuilder B = b;
        readonly string domain = o.ContribQdq ? "com.microsoft" : "";
        public DType Act => o.Int8Activations ? DType.Int8 : DType.UInt8;

        /// <summary>Activation parameters for the real range [lo, hi] (0 always inside), as ONNX Runtime's compute_scale_zp.</summary>
        public (double S, double Z) Params(double lo, double hi)
        {
            lo = Math.Min(lo, 0);
            hi = Math.Max(hi, 0);
            if (o.Int8Activations)
            {
                double m = Math.Max(Math.Abs(lo), Math.Abs(hi));
                return ((float)(m / 127), 0);
            }
            double s = (float)((hi - lo) / 255);
            return (s, Math.Round(-lo / s));
        }

        public string Dq(string q, string scale, string zp, string name, int? axis = null) =>
            axis is { } a ? B.NodeIn(domain, "DequantizeLinear", [q, scale, zp], name, ("axis", a)) : B.NodeIn(domain, "DequantizeLinear", [q, scale, zp], name);

        /// <summary>QuantizeLinear and DequantizeLinear on an activation, named after it.</summary>
        public string Qdq(string x, (double S, double Z) p)
        {
            var s = B.Init($"{x}_scale", DType.Float32, [], p.S);
            var z = B.Init($"{x}_zero_point", Act, [], p.Z);
            var q = B.NodeIn(domain, "QuantizeLinear", [x, s, z], $"{x}_QuantizeLinear");
            return Dq(q, s, z, $"{x}_DequantizeLinear");
        }

        /// <summary>Symmetric int8 weights per channel along <paramref name="axis"/> of a 2-D float matrix [rows, cols].</summary>
        public (string Dq, double[] Scale) Weights(string name, double[] w, int rows, int cols, int axis)
        {
            int qmax = o.ReduceRange ? 63 : 127, n = axis == 0 ? rows : cols;
            var scale = new double[n];
            for (int j = 0; j < n; j++)
                scale[j] = (float)(Enumerable.Range(0, axis == 0 ? cols : rows).Max(i => Math.Abs(w[axis == 0 ? j * cols + i : i * cols + j])) / qmax);
            var q = w.Select((v, i) => Math.Clamp(Math.Round(v / scale[axis == 0 ? i / cols : i % cols], MidpointRounding.ToEven), -qmax, qmax)).ToArray();
            var dq = Dq(B.Init($"{name}_quantized", DType.Int8, [rows, cols], q), B.Init($"{name}_scale", DType.Float32, [n], scale),
                B.Init($"{name}_zero_point", DType.Int8, [n], new double[n]), $"{name}_DequantizeLinear", axis);
            return (dq, scale);
        }

        /// <summary>A bias as ONNX Runtime's quantize_bias_static writes it: int32 codes at scale sx·sw[j], zero point 0.</summary>
        public string Bias(string name, double[] bias, double sx, double[] sw)
        {
            var s = sw.Select(v => (double)((float)sx * (float)v)).ToArray();
            var q = bias.Select((v, j) => Math.Round(v / s[j], MidpointRounding.ToEven)).ToArray();
            return Dq(B.Init($"{name}_quantized", DType.Int32, [bias.Length], q), B.Init($"{name}_quantized_scale", DType.Float32, [bias.Length], s),
                B.Init($"{name}_quantized_zero_point", DType.Int32, [bias.Length], new double[bias.Length]), $"{name}_DequantizeLinear", 0);
        }

        /// <summary>A float constant an Add reads, quantized per tensor like an activation (ONNX Runtime's QDQ default for a
        /// tensor that is no Conv/Gemm/MatMul weight).</summary>
        public string ActivationConstant(string name, double[] v, int[] shape)
        {
            var (s, z) = Params(v.Min(), v.Max());
            var (lo, hi) = Act.Range();
            var q = v.Select(x => Math.Clamp(Math.Round(x / s, MidpointRounding.ToEven) + z, lo, hi)).ToArray();
            return Dq(B.Init($"{name}_quantized", Act, shape, q), B.Init($"{name}_scale", DType.Float32, [], s), B.Init($"{name}_zero_point", Act, [], z),
                $"{name}_DequantizeLinear");
        }
    }

    static double[] Random(Random rng, int n, double amplitude) => Enumerable.Range(0, n).Select(_ => (double)(float)((rng.NextDouble() * 2 - 1) * amplitude)).ToArray();

    /// <summary>Rows of x times w [k, n] plus bias, optionally ReLU'd: the float forward pass that calibrates the next scale.</summary>
    static double[][] Forward(double[][] x, double[] w, int k, int n, bool transposed, double[] bias, bool relu) => x.Select(r =>
        Enumerable.Range(0, n).Select(j =>
        {
            double acc = bias[j];
            for (int i = 0; i < k; i++) acc += r[i] * w[transposed ? j * k + i : i * n + j];
            return relu ? Math.Max(acc, 0) : acc;
        }).ToArray()).ToArray();

    /// <summary>
    /// An MLP as torch exports nn.Linear (Gemm, transB=1) quantized by quantize_static: x [batch, dims[0]], per layer the
    /// weights per channel on axis 0, the int32 bias behind DequantizeLinear, ReLU (removed: the Gemm's output QDQ takes its
    /// range) on every layer but the last.
    /// </summary>
    /// <param name="image">the input is an image [batch, 1, h, w] (h·w = dims[0]) that a Flatten (axis 1) makes rows, QDQ'd before
    /// and after as quantize_static does for Flatten (an op it quantizes).</param>
    public static OnnxBuilder GemmMlp(int seed, int batch, int[] dims, OrtOptions o, (int H, int W)? image = null)
    {
        var rng = new Random(seed);
        var w = new Writer(new OnnxBuilder(o.Opset), o);
        if (o.ContribQdq) w.B.Import("com.microsoft", 1);
        if (image is var (ih, iw)) w.B.Input("x", DType.Float32, batch, 1, ih, iw);
        else w.B.Input("x", DType.Float32, batch, dims[0]);
        var calib = Enumerable.Range(0, 64).Select(_ => Random(rng, dims[0], 1)).ToArray();
        var p = w.Params(-1, 1);
        string cur = w.Qdq("x", p);
        if (image is not null) cur = w.Qdq(w.B.Node("Flatten", [cur], "/Flatten", ("axis", 1)), p);
        for (int l = 0; l + 1 < dims.Length; l++)
        {
            int k = dims[l], n = dims[l + 1];
            bool last = l + 2 == dims.Length;
            var wf = Random(rng, n * k, 1.5 / Math.Sqrt(k));   // [n, k], torch's Linear.weight
            var bias = Random(rng, n, 0.2);
            var (wdq, ws) = w.Weights($"fc{l}.weight", wf, n, k, 0);
            var y = w.B.Node("Gemm", [cur, wdq, w.Bias($"fc{l}.bias", bias, p.S, ws)], $"/fc{l}/Gemm", ("alpha", 1f), ("beta", 1f), ("transB", 1));
            calib = Forward(calib, wf, k, n, true, bias, relu: !last);
            var next = w.Params(calib.Min(r => r.Min()), calib.Max(r => r.Max()));
            cur = w.Qdq(y, next);
            p = next;
        }
        w.B.Output(cur, DType.Float32, batch, dims[^1]);
        return w.B;
    }

    /// <summary>
    /// The MLP of <see cref="GemmMlp"/> as quantize_static writes it in QOperator format: QuantizeLinear of the input, a contrib
    /// QGemm (com.microsoft) per layer with the per-channel int8 weights, their zero-point vector and the int32 bias at scale sx·sw[j]
    /// (ReLU removed), DequantizeLinear of the output; with <paramref name="matMulAdd"/> the last layer is torch's MatMul and Add
    /// instead: QLinearMatMul (per-tensor weights) and a contrib QLinearAdd of the bias, quantized per tensor like the activation
    /// (QLinearAdd binds both operands to one type).
    /// </summary>
    public static OnnxBuilder QOperatorMlp(int seed, int batch, int[] dims, OrtOptions o, bool matMulAdd = false)
    {
        var rng = new Random(seed);
        var w = new Writer(new OnnxBuilder(o.Opset).Import("com.microsoft", 1), o);
        w.B.Input("x", DType.Float32, batch, dims[0]);
        var calib = Enumerable.Range(0, 64).Select(_ => Random(rng, dims[0], 1)).ToArray();
        var p = w.Params(-1, 1);
        string s = w.B.Init("x_scale", DType.Float32, [], p.S), z = w.B.Init("x_zero_point", w.Act, [], p.Z);
        string cur = w.B.Node("QuantizeLinear", ["x", s, z], "x_QuantizeLinear");
        for (int l = 0; l + 1 < dims.Length; l++)
        {
            int k = dims[l], n = dims[l + 1];
            bool last = l + 2 == dims.Length;
            var wf = Random(rng, n * k, 1.5 / Math.Sqrt(k));   // [n, k]
            var bias = Random(rng, n, 0.2);
            calib = Forward(calib, wf, k, n, true, bias, relu: !last);
            var next = w.Params(calib.Min(r => r.Min()), calib.Max(r => r.Max()));
            string ys = w.B.Init($"fc{l}_output_scale", DType.Float32, [], next.S), yz = w.B.Init($"fc{l}_output_zero_point", w.Act, [], next.Z);
            if (matMulAdd && last)
            {
                // MatMul weights [k, n], one scale; then the Add of the bias, an int8 constant with its own scale.
                var wkn = new double[k * n];
                for (int j = 0; j < n; j++) for (int i = 0; i < k; i++) wkn[i * n + j] = wf[j * k + i];
                double ws = (float)(wkn.Max(Math.Abs) / 127);
                var mm = calib.Select(r => r.Select((v, j) => v - bias[j]).ToArray()).ToArray();
                var mp = w.Params(mm.Min(r => r.Min()), mm.Max(r => r.Max()));
                string ms = w.B.Init($"fc{l}_mm_scale", DType.Float32, [], mp.S), mz = w.B.Init($"fc{l}_mm_zero_point", w.Act, [], mp.Z);
                cur = w.B.Node("QLinearMatMul", [cur, s, z, w.B.Init($"fc{l}.weight_quantized", DType.Int8, [k, n], wkn.Select(v => Math.Round(v / ws)).ToArray()),
                    w.B.Init($"fc{l}.weight_scale", DType.Float32, [], ws), w.B.Init($"fc{l}.weight_zero_point", DType.Int8, [], 0), ms, mz], $"/fc{l}/MatMul_quant");
                // QLinearAdd binds both operands to one type: the constant is quantized like the activation.
                var (bs, bz) = w.Params(bias.Min(), bias.Max());
                var (lo, hi) = w.Act.Range();
                cur = w.B.NodeIn("com.microsoft", "QLinearAdd", [cur, ms, mz, w.B.Init($"fc{l}.bias_quantized", w.Act, [n],
                        bias.Select(v => Math.Clamp(Math.Round(v / bs, MidpointRounding.ToEven) + bz, lo, hi)).ToArray()),
                    w.B.Init($"fc{l}.bias_scale", DType.Float32, [], bs), w.B.Init($"fc{l}.bias_zero_point", w.Act, [], bz), ys, yz], $"/fc{l}/Add_quant");
            }
            else
            {
                int qmax = o.ReduceRange ? 63 : 127;
                var ws = Enumerable.Range(0, n).Select(j => (double)(float)(Enumerable.Range(0, k).Max(i => Math.Abs(wf[j * k + i])) / qmax)).ToArray();
                var bq = bias.Select((v, j) => Math.Round(v / (double)((float)p.S * (float)ws[j]), MidpointRounding.ToEven)).ToArray();
                cur = w.B.NodeIn("com.microsoft", "QGemm", [cur, s, z,
                    w.B.Init($"fc{l}.weight_quantized", DType.Int8, [n, k], wf.Select((v, i) => Math.Clamp(Math.Round(v / ws[i / k], MidpointRounding.ToEven), -qmax, qmax)).ToArray()),
                    w.B.Init($"fc{l}.weight_scale", DType.Float32, [n], ws), w.B.Init($"fc{l}.weight_zero_point", DType.Int8, [n], new double[n]),
                    w.B.Init($"fc{l}.bias_quantized", DType.Int32, [n], bq), ys, yz], $"/fc{l}/Gemm_quant", ("alpha", 1f), ("transB", 1));
            }
            (s, z, p) = (ys, yz, next);
        }
        var y = w.B.Node("DequantizeLinear", [cur, s, z], "y_DequantizeLinear");
        w.B.Output(y, DType.Float32, batch, dims[^1]);
        return w.B;
    }

    /// <summary>How a model writes GELU.</summary>
    public enum Gelu
    {
        /// <summary>torch's export before opset 20: Div(√2), Erf, Add(1), Mul(x), Mul(0.5); quantize_static quantizes the Add and the
        /// Muls (in its op list), so a QDQ pair follows Erf, the Add and each Mul, and their constants are DequantizeLinear'd.</summary>
        ErfChain,
        /// <summary>The Gelu op of opset 20 (approximate "none"), which quantize_static leaves in float between two QDQ pairs.</summary>
        Op,
        /// <summary>Gelu with approximate "tanh".</summary>
        OpTanh,
    }

    /// <summary>A feed-forward block x [4, 16] → MatMul 16×32 → GELU → MatMul 32×8, quantized by quantize_static, GELU written as
    /// <paramref name="gelu"/> says (the erf chain's last factor <paramref name="half"/>, 0.5 in GELU).</summary>
    public static OnnxBuilder GeluFfn(int seed, Gelu gelu, OrtOptions o, double half = 0.5)
    {
        const int K = 16, H = 32, N = 8;
        var rng = new Random(seed);
        var w = new Writer(new OnnxBuilder(gelu == Gelu.ErfChain ? o.Opset : Math.Max(20, o.Opset)), o);
        w.B.Input("x", DType.Float32, 4, K);
        var calib = Enumerable.Range(0, 64).Select(_ => Random(rng, K, 1)).ToArray();
        (double S, double Z) Range(IEnumerable<double> v) => w.Params(v.Min(), v.Max());
        var x = w.Qdq("x", w.Params(-1, 1));
        var w1 = Random(rng, K * H, 3 / Math.Sqrt(K));
        var h = w.B.Node("MatMul", [x, w.Weights("fc1.weight", w1, K, H, 1).Dq], "/fc1/MatMul");
        var hReal = Forward(calib, w1, K, H, false, new double[H], false).SelectMany(r => r).ToArray();
        h = w.Qdq(h, Range(hReal));
        double Phi(double v) => 0.5 * (1 + HwGen.Reference.NnLut.Functions.Erf(v / Math.Sqrt(2)));
        string g;
        if (gelu == Gelu.ErfChain)
        {
            var erf = w.B.Node("Erf", [w.B.Node("Div", [h, w.B.Init("sqrt2", DType.Float32, [], 1.4142135381698608)], "/act/Div")], "/act/Erf");
            erf = w.Qdq(erf, w.Params(-1, 1));
            var add = w.Qdq(w.B.Node("Add", [erf, w.ActivationConstant("one", [1.0], [])], "/act/Add"), w.Params(0, 2));
            var mul = w.Qdq(w.B.Node("Mul", [h, add], "/act/Mul"), Range(hReal.Select(v => 2 * v * Phi(v))));
            g = w.B.Node("Mul", [mul, w.ActivationConstant("half", [half], [])], "/act/Mul_1");
        }
        else g = w.B.Node("Gelu", [h], "/act/Gelu", ("approximate", gelu == Gelu.OpTanh ? "tanh" : "none"));
        var gReal = hReal.Select(v => v * Phi(v)).ToArray();
        g = w.Qdq(g, Range(gReal));
        var w2 = Random(rng, H * N, 1.5 / Math.Sqrt(H));
        var y = w.B.Node("MatMul", [g, w.Weights("fc2.weight", w2, H, N, 1).Dq], "/fc2/MatMul");
        var gRows = Enumerable.Range(0, calib.Length).Select(r => gReal.Skip(r * H).Take(H).ToArray()).ToArray();
        y = w.Qdq(y, Range(Forward(gRows, w2, H, N, false, new double[N], false).SelectMany(r => r)));
        w.B.Output(y, DType.Float32, 4, N);
        return w.B;
    }

    /// <summary>
    /// A transformer-style block on x [2, 4, 16] as torch exports it for 3-D inputs (MatMul, then Add of the bias) quantized by
    /// quantize_static: MatMul with weights per channel on axis 1, its output QDQ'd, the Add's bias quantized like an activation,
    /// LayerNormalization (opset 17) with its scale and bias behind DequantizeLinear, then Softmax over the features, its output
    /// at scale 1/256 (uint8, zero point 0) or 1/128 (int8, zero point -128) as QDQSoftmax fixes it.
    /// </summary>
    public static OnnxBuilder Block(int seed, OrtOptions o)
    {
        const int K = 16, N = 16;
        var rng = new Random(seed);
        var w = new Writer(new OnnxBuilder(Math.Max(17, o.Opset)), o);
        if (o.ContribQdq) w.B.Import("com.microsoft", 1);
        w.B.Input("x", DType.Float32, 2, 4, K);
        var calib = Enumerable.Range(0, 64).Select(_ => Random(rng, K, 1)).ToArray();
        var x = w.Qdq("x", w.Params(-1, 1));
        var wf = Random(rng, K * N, 1.5 / Math.Sqrt(K));   // [k, n]
        var bias = Random(rng, N, 0.3);
        var (wdq, _) = w.Weights("proj.weight", wf, K, N, 1);
        var mm = w.B.Node("MatMul", [x, wdq], "/proj/MatMul");
        var mmReal = Forward(calib, wf, K, N, false, new double[N], false);
        mm = w.Qdq(mm, w.Params(mmReal.Min(r => r.Min()), mmReal.Max(r => r.Max())));
        var add = w.B.Node("Add", [mm, w.ActivationConstant("proj.bias", bias, [N])], "/proj/Add");
        var addReal = mmReal.Select(r => r.Select((v, j) => v + bias[j]).ToArray()).ToArray();
        add = w.Qdq(add, w.Params(addReal.Min(r => r.Min()), addReal.Max(r => r.Max())));
        var gamma = Enumerable.Range(0, N).Select(_ => (double)(float)(1 + 0.2 * (rng.NextDouble() - 0.5))).ToArray();
        var beta = Random(rng, N, 0.2);
        var gs = (float)(gamma.Max(Math.Abs) / 127);
        var g = w.Dq(w.B.Init("norm.weight_quantized", DType.Int8, [N], gamma.Select(v => Math.Round(v / gs)).ToArray()), w.B.Init("norm.weight_scale", DType.Float32, [], gs),
            w.B.Init("norm.weight_zero_point", DType.Int8, [], 0), "norm.weight_DequantizeLinear");
        // The bias's scale is the input's times the scale's (quantize_bias_tensor with the LayerNorm's input and scale).
        var addScale = w.Params(addReal.Min(r => r.Min()), addReal.Max(r => r.Max())).S;
        var bs = (double)((float)addScale * gs);
        var be = w.Dq(w.B.Init("norm.bias_quantized", DType.Int32, [N], beta.Select(v => Math.Round(v / bs)).ToArray()), w.B.Init("norm.bias_quantized_scale", DType.Float32, [], bs),
            w.B.Init("norm.bias_quantized_zero_point", DType.Int32, [], 0), "norm.bias_DequantizeLinear");
        var ln = w.B.Node("LayerNormalization", [add, g, be], "/norm/LayerNormalization", ("axis", -1), ("epsilon", 1e-5f));
        ln = w.Qdq(ln, w.Params(-3, 3));
        var sm = w.B.Node("Softmax", [ln], "/Softmax", ("axis", -1));
        sm = w.Qdq(sm, o.Int8Activations ? (1.0 / 128, -128) : (1.0 / 256, 0));
        w.B.Output(sm, DType.Float32, 2, 4, N);
        return w.B;
    }
}
