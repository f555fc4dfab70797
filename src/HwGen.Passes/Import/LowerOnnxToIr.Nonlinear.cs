using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Reference;
using HwGen.Reference.NnLut;

namespace HwGen.Passes.Import;

/// <summary>
/// Nonlinear ops for the NN-LUT units. Element-wise chains on one dequantized tensor (Erf, Sigmoid, Tanh and
/// arithmetic with scalars or with the same tensor, as torch writes GELU: x * 0.5 * (1 + erf(x / sqrt 2))) are
/// composed into one real function and, at their QuantizeLinear, recognized by value: the function must equal a
/// unit's (GELU, Erf, sigmoid, tanh, SiLU) on every int8 input, or a positive scaling (a requantization). Softmax and LayerNormalization over the last axis
/// map to their units; so does LayerNorm written out as ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul, Add
/// (torch before opset 17).
/// </summary>
public sealed partial class LowerOnnxToIr
{
    /// <summary>A real element-wise function of a dequantized tensor, built from the nodes in Chain; <paramref name="Approximate"/> when it
    /// only approximates a unit: the chain passes through QuantizeLinear/DequantizeLinear pairs of its own (<see cref="QuantizedFunction"/>),
    /// or it holds GELU's tanh form.</summary>
    sealed record RealFunction(Value V, Func<double, double> F, string Chain, bool Approximate = false) : Abs
    {
        /// <summary>The error of the last QuantizeLinear in the chain that was no unit's (<see cref="QuantizedFunction.Why"/>): what
        /// fails when the chain ends anywhere but at a QuantizeLinear a unit completes.</summary>
        public HwGenException? Unresolved { get; init; }
    }
    /// <summary>QuantizeLinear of an element-wise function that is no unit's, waiting for a DequantizeLinear that continues the chain:
    /// ONNX Runtime's quantizer puts QDQ pairs inside torch's GELU (after Erf, Add and each Mul). Anything else that reads it fails
    /// with <paramref name="Why"/> (the error of its QuantizeLinear).</summary>
    sealed record QuantizedFunction(RealFunction F, QuantParams Q, DType OnnxType, HwGenException Why) : Abs;
    /// <summary>Softmax of a dequantized tensor over its last axis, waiting for its QuantizeLinear.</summary>
    sealed record PendingSoftmax(Value V, string Node, MaskedScores? Mask = null) : Abs;
    /// <summary>Layer normalization of a dequantized tensor over its last axis, waiting for its QuantizeLinear.</summary>
    sealed record PendingLayerNorm(Value V, double Epsilon, double[] Gamma, double[] Beta, string Node) : Abs;
    /// <summary>A step of the written-out LayerNorm of a dequantized tensor.</summary>
    sealed record LayerNormPart(Value V, LayerNormStep Step, double Epsilon, string Node) : Abs;
    enum LayerNormStep { Mean, Centered, Squared, Variance, VarianceEps, Std, Normalized }

    static readonly Dictionary<string, Func<double, double>> UnaryOps = new()
    {
        ["Erf"] = Functions.Erf, ["Sigmoid"] = x => 1 / (1 + Math.Exp(-x)), ["Tanh"] = Math.Tanh,
    };

    static RealFunction? AsFunction(Abs? a) => a switch
    {
        RealView rv => new RealFunction(rv.V, x => x, ""),
        RealFunction f => f,
        _ => null,
    };

    /// <summary>A float scalar constant, or DequantizeLinear of an integer one (ONNX Runtime quantizes an Add's or Mul's constant).</summary>
    static double? Scalar(Abs? a) => a switch
    {
        Const c when c.T.Size == 1 && !c.T.Type.IsInteger() => c.T.Data[0],
        QConst q when q.Q.Size == 1 => q.Real.Data[0],
        _ => null,
    };

    static string Then(string chain, string op) => chain.Length == 0 ? op : chain + ", " + op;

    /// <summary>The lowering of a node that belongs to a nonlinear pattern, or null when it does not.</summary>
    Abs? LowerNonlinear(OnnxNode node, Abs?[] ins)
    {
        string op = node.OpType;
        var a = ins.ElementAtOrDefault(0);
        var b = ins.ElementAtOrDefault(1);
        switch (op)
        {
            case "Softmax" when a is RealView rv:
            {
                int rank = rv.V.Type.Shape.Count;
                long axis = node.Int("axis", model.Opset >= 13 ? -1 : 1);
                if (axis != -1 && axis != rank - 1)
                    throw Error(node, $"Softmax over axis {axis} of a rank-{rank} tensor: the softmax unit works over the last axis");
                return new PendingSoftmax(rv.V, node.Name);
            }
            case "Softmax" when a is MaskedScores { OnnxType: null } ms:
            {
                long axis = node.Int("axis", model.Opset >= 13 ? -1 : 1);
                if (axis != -1 && axis != ms.V.Type.Shape.Count - 1)
                    throw Error(node, $"Softmax over axis {axis} of masked scores: the softmax unit works over the last axis");
                return new PendingSoftmax(ms.V, node.Name, ms);
            }
            case "Softmax" when a is PendingAdd { A: ConstOperand } or PendingAdd { B: ConstOperand }:
                throw Error(node, $"Softmax of the Add '{((PendingAdd)a).Node}' of a constant that is no attention mask (a mask holds only 0 for kept and " +
                    "values at most -10^4 for masked positions): quantize the Add's result (QuantizeLinear, DequantizeLinear) before the Softmax");
            case "LayerNormalization" when a is RealView rv:
            {
                int rank = rv.V.Type.Shape.Count, n = rv.V.Type.Shape[^1];
                long axis = node.Int("axis", -1);
                if (axis != -1 && axis != rank - 1)
                    throw Error(node, $"LayerNormalization over axes from {axis} of a rank-{rank} tensor: the LayerNorm unit normalizes the last axis");
                var gamma = Vector(node, ins, 1, "scale", n) ?? throw Error(node, "LayerNormalization needs a scale");
                var beta = Vector(node, ins, 2, "bias", n) ?? new double[n];
                return new PendingLayerNorm(rv.V, node.Float("epsilon", 1e-5f), gamma, beta, node.Name);
            }
            case "ReduceMean":
            {
                if (a is not RealView and not LayerNormPart { Step: LayerNormStep.Squared }) return null;
                var v = a is RealView r ? r.V : ((LayerNormPart)a).V;
                int rank = v.Type.Shape.Count;
                var axes = b is Const c ? c.T.Data.Select(d => (long)d).ToList() : node.Ints("axes")?.ToList();
                if (a is RealView pooled && axes is not null && LowerMeanPool(node, pooled, axes) is { } pool) return pool;
                if (axes is not [var ax] || (ax != -1 && ax != rank - 1) || node.Int("keepdims", 1) == 0)
                    throw Error(node, "ReduceMean is supported over the last axis as part of LayerNorm (keeping dimensions), and over the token axis (-2) as mean pooling");
                return a is RealView ? new LayerNormPart(v, LayerNormStep.Mean, 0, node.Name) : ((LayerNormPart)a) with { Step = LayerNormStep.Variance };
            }
            case "Sub" when a is RealView rv && b is LayerNormPart { Step: LayerNormStep.Mean } m && m.V == rv.V:
                return m with { Step = LayerNormStep.Centered };
            case "Pow" when a is LayerNormPart { Step: LayerNormStep.Centered } p && Scalar(b) == 2:
                return p with { Step = LayerNormStep.Squared };
            case "Mul" when a is LayerNormPart { Step: LayerNormStep.Centered } p && b is LayerNormPart { Step: LayerNormStep.Centered } q && p.V == q.V:
                return p with { Step = LayerNormStep.Squared };
            case "Add" when a is LayerNormPart { Step: LayerNormStep.Variance } p && Scalar(b) is { } eps:
                return p with { Step = LayerNormStep.VarianceEps, Epsilon = eps };
            case "Sqrt" when a is LayerNormPart { Step: LayerNormStep.VarianceEps } p:
                return p with { Step = LayerNormStep.Std };
            case "Div" when a is LayerNormPart { Step: LayerNormStep.Centered } p && b is LayerNormPart { Step: LayerNormStep.Std } q && p.V == q.V:
                return q with { Step = LayerNormStep.Normalized };
            case "Mul" when (a is LayerNormPart { Step: LayerNormStep.Normalized } && b is Const) || (a is Const && b is LayerNormPart { Step: LayerNormStep.Normalized }):
            {
                var p = (LayerNormPart)(a is Const ? b : a)!;
                int n = p.V.Type.Shape[^1];
                var gamma = Vector(node, ins, a is Const ? 0 : 1, "scale", n)!;
                return new PendingLayerNorm(p.V, p.Epsilon, gamma, new double[n], p.Node);
            }
            case "Add" when (a is PendingLayerNorm && b is Const) || (a is Const && b is PendingLayerNorm):
            {
                var l = (PendingLayerNorm)(a is Const ? b : a)!;
                if (l.Beta.Any(v => v != 0)) return null;
                return l with { Beta = Vector(node, ins, a is Const ? 0 : 1, "bias", l.V.Type.Shape[^1])! };
            }
        }

        // Gelu (opset 20): the GELU unit computes its erf form; the tanh form lies within 4e-4 of it.
        if (op == "Gelu" && AsFunction(a) is { } fg && OnnxEvaluator.Gelu(node, model.Path) is var gelu)
            return new RealFunction(fg.V, x => gelu(fg.F(x)), Then(fg.Chain, op), fg.Approximate || node.Str("approximate", "none") == "tanh") { Unresolved = fg.Unresolved };
        if (UnaryOps.TryGetValue(op, out var g) && AsFunction(a) is { } fa)
            return new RealFunction(fa.V, x => g(fa.F(x)), Then(fa.Chain, op), fa.Approximate) { Unresolved = fa.Unresolved };
        if (op is not ("Add" or "Sub" or "Mul" or "Div")) return null;
        // A dequantized activation plus or minus a float scalar is an Add of a constant (LowerAdd), as a tensor constant is.
        if (op is "Add" or "Sub" && ((a is RealView && Scalar(b) is not null) || (b is RealView && Scalar(a) is not null))) return null;
        Func<double, double, double> bin = op switch
        {
            "Add" => (x, y) => x + y, "Sub" => (x, y) => x - y, "Mul" => (x, y) => x * y, _ => (x, y) => x / y,
        };
        var (f1, f2) = (AsFunction(a), AsFunction(b));
        if (f1 is not null && f2 is not null && f1.V == f2.V)
        {
            var longer = f1.Chain.Length >= f2.Chain.Length ? f1 : f2;
            return new RealFunction(f1.V, x => bin(f1.F(x), f2.F(x)), Then(longer.Chain, op), f1.Approximate || f2.Approximate)
                { Unresolved = longer.Unresolved ?? f1.Unresolved ?? f2.Unresolved };
        }
        if (f1 is not null && Scalar(b) is { } cb)
            return new RealFunction(f1.V, x => bin(f1.F(x), cb), Then(f1.Chain, op), f1.Approximate) { Unresolved = f1.Unresolved };
        if (f2 is not null && Scalar(a) is { } ca)
            return new RealFunction(f2.V, x => bin(ca, f2.F(x)), Then(f2.Chain, op), f2.Approximate) { Unresolved = f2.Unresolved };
        return null;
    }

    /// <summary>A constant per-channel vector (or a scalar, broadcast) of n values; null when the input is absent.</summary>
    double[]? Vector(OnnxNode node, Abs?[] ins, int i, string what, int n)
    {
        if (ins.ElementAtOrDefault(i) is null) return null;
        // ONNX Runtime's quantizer writes LayerNormalization's scale and bias as DequantizeLinear of int8 and int32 constants.
        var t = ins[i] is QConst qc ? qc.Real : ConstIn(node, ins, i, what).T;
        if (t.Size == 1) return Enumerable.Repeat(t.Data[0], n).ToArray();
        if (t.Size != n) throw Error(node, $"{what} has {t.Size} values; the last axis has {n}");
        return t.Data.ToArray();
    }

    /// <summary>The nonlinear op a QuantizeLinear completes, or null when its input is no nonlinear pattern.</summary>
    Value? EmitNonlinear(OnnxNode quantNode, Abs input, QuantParams q)
    {
        switch (input)
        {
            case RealFunction f when Scaling(f) is { } c:
                return EmitRequant(quantNode, f.V, q, double.NegativeInfinity, double.PositiveInfinity, FullRange, c);
            case RealFunction f:
            {
                var name = Recognize(quantNode, f, q);
                var y = NewValue(quantNode.Outputs[0], new TensorType(DType.Int8, f.V.Type.Shape, q));
                return Emit(new QLut(Legal(quantNode.Name.Length > 0 ? $"{name}_{quantNode.Name}" : name), f.V, y, name) { OutputQuant = q });
            }
            case PendingSoftmax s:
            {
                var y = NewValue(quantNode.Outputs[0], new TensorType(DType.Int8, s.V.Type.Shape, q));
                return Emit(s.Mask is { } m ? new QSoftmax(Legal(s.Node), s.V, y) { Inputs = [s.V, EmitMask(m)], OutputQuant = q }
                    : new QSoftmax(Legal(s.Node), s.V, y) { OutputQuant = q });
            }
            case LayerNormPart { Step: LayerNormStep.Normalized } p:
                return EmitNonlinear(quantNode, new PendingLayerNorm(p.V, p.Epsilon, Enumerable.Repeat(1.0, p.V.Type.Shape[^1]).ToArray(), new double[p.V.Type.Shape[^1]], p.Node), q);
            case PendingLayerNorm l:
                return Emit(new QLayerNorm(Legal(l.Node), l.V, NewValue(quantNode.Outputs[0], new TensorType(DType.Int8, l.V.Type.Shape, q)), l.Epsilon, l.Gamma, l.Beta) { OutputQuant = q });
            case LayerNormPart p:
                throw Error(quantNode, $"a LayerNorm written out in ops ends at its {p.Step.ToString().ToLowerInvariant()} step; only the whole LayerNorm maps to the unit");
            default:
                return null;
        }
    }

    /// <summary>The factor c when <paramref name="f"/> is x·c for one c > 0 on every int8 code of its input (a Mul or Div by a
    /// positive scalar, such as attention's 1/sqrt(d), or x + x): a requantization, not a table. Else null.</summary>
    static double? Scaling(RealFunction f)
    {
        var q = f.V.Type.Quant!;
        double? c = null;
        for (int code = -128; code < 128; code++)
        {
            double x = (code - q.ZeroPoint) * q.Scale, y = f.F(x);
            if (x == 0)
            {
                if (y != 0) return null;
                continue;
            }
            c ??= y / x;
            if (!(Math.Abs(y / x - c.Value) <= 1e-9 * Math.Abs(c.Value))) return null;
        }
        return c is { } v && v > 0 && double.IsFinite(v) ? v : null;
    }

    /// <summary>The unit function equal to <paramref name="f"/> on every int8 code of its input, or an error. A chain with QDQ pairs of
    /// its own (<see cref="RealFunction.Approximate"/>) is the unit closest to it when that is within <see cref="ApproximateChainQuanta"/> of
    /// the output <paramref name="q"/> on every code: those pairs' roundings are not the unit's, so the hardware then differs from
    /// ONNX by their error too (measured against ONNX Runtime on torch's GELU as its quantizer writes it: ExporterLayoutTests).</summary>
    string Recognize(OnnxNode node, RealFunction f, QuantParams q) => TryRecognize(f, q) ?? throw NotAUnit(node, f);

    /// <summary>How far, in output quanta, a chain with QDQ pairs inside may lie from the unit that computes it, on the codes where
    /// none of those pairs saturates: the pairs' roundings (in torch's GELU as ONNX Runtime quantizes it, half a quantum of 1 + erf
    /// times x, then of the product) reach about 1.3. Where a pair saturates (codes outside the range calibration saw), the unit
    /// computes the function, not the saturated value.</summary>
    const double ApproximateChainQuanta = 2;

    string? TryRecognize(RealFunction f, QuantParams q)
    {
        var qx = f.V.Type.Quant!;
        var xs = Enumerable.Range(-128, 256).Select(c => (c - qx.ZeroPoint) * qx.Scale).ToArray();
        // An approximate chain is compared where its QDQ pairs inside do not saturate (NaN elsewhere): on the codes calibration saw.
        if (f.Approximate) xs = xs.Where(x => !double.IsNaN(f.F(x))).ToArray();
        if (xs.Length < 128) return null;
        double Worst(string name)
        {
            var fn = Functions.Parse(name);
            return xs.Max(x => Math.Abs(f.F(x) - Functions.Eval(fn, x)) / (f.Approximate ? q.Scale : 1e-5 * Math.Max(1, Math.Abs(Functions.Eval(fn, x)))));
        }
        var (best, error) = QLut.Functions.Select(n => (n, Worst(n))).MinBy(p => p.Item2);
        return error <= (f.Approximate ? ApproximateChainQuanta : 1) ? best : null;
    }

    HwGenException NotAUnit(OnnxNode node, RealFunction f) => Error(node, $"the element-wise function ({(f.Chain.Length == 0 ? "identity" : f.Chain)}) of a " +
        $"dequantized tensor is not one the NN-LUT units compute ({string.Join(", ", QLut.Functions)}) nor a positive scaling" +
        (f.Approximate ? $" (nor within {ApproximateChainQuanta} output quanta of one where the QuantizeLinear/DequantizeLinear pairs inside it do not saturate)" : ""));

    /// <summary>QuantizeLinear of an element-wise function: its unit, or a requantization, or, when it is neither, a function that a
    /// DequantizeLinear may continue (<see cref="QuantizedFunction"/>); null for other inputs.</summary>
    Abs? QuantizeFunction(OnnxNode node, Abs? x, QuantParams q, DType onnxType) =>
        x is RealFunction f && Scaling(f) is null && TryRecognize(f, q) is null ? new QuantizedFunction(f, q, onnxType, NotAUnit(node, f)) : null;

    /// <summary>DequantizeLinear of a <see cref="QuantizedFunction"/>: the function with that rounding, for the chain to go on.</summary>
    RealFunction DequantizeFunction(OnnxNode node, QuantizedFunction qf, Abs?[] ins)
    {
        var (q, _) = ActivationQuant(node, ins);
        if (!qf.Q.SameAs(q)) throw Error(node, "DequantizeLinear parameters differ from those the tensor was quantized with");
        var f = qf.F.F;
        // NaN where the pair saturates: there the chain is no longer the function it approximates (TryRecognize skips those codes).
        return new RealFunction(qf.F.V, x => f(x) is var v && v / q.Scale + q.ZeroPoint is < -128.5 or > 127.5 ? double.NaN
                : QuantMath.Dequantize(QuantMath.Quantize(v, q.Scale, q.ZeroPoint, DType.Int8), q.Scale, q.ZeroPoint),
            Then(qf.F.Chain, "QuantizeLinear, DequantizeLinear"), Approximate: true) { Unresolved = qf.Why };
    }
}
