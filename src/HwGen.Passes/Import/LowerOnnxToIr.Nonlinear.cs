using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
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
    /// <summary>A real element-wise function of a dequantized tensor, built from the nodes in Chain.</summary>
    sealed record RealFunction(Value V, Func<double, double> F, string Chain) : Abs;
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

    static double? Scalar(Abs? a) => a is Const c && c.T.Size == 1 && !c.T.Type.IsInteger() ? c.T.Data[0] : null;

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

        if (UnaryOps.TryGetValue(op, out var g) && AsFunction(a) is { } fa)
            return new RealFunction(fa.V, x => g(fa.F(x)), Then(fa.Chain, op));
        if (op is not ("Add" or "Sub" or "Mul" or "Div")) return null;
        // A dequantized activation plus or minus a float scalar is an Add of a constant (LowerAdd), as a tensor constant is.
        if (op is "Add" or "Sub" && ((a is RealView && Scalar(b) is not null) || (b is RealView && Scalar(a) is not null))) return null;
        Func<double, double, double> bin = op switch
        {
            "Add" => (x, y) => x + y, "Sub" => (x, y) => x - y, "Mul" => (x, y) => x * y, _ => (x, y) => x / y,
        };
        var (f1, f2) = (AsFunction(a), AsFunction(b));
        if (f1 is not null && f2 is not null && f1.V == f2.V)
            return new RealFunction(f1.V, x => bin(f1.F(x), f2.F(x)), Then(f1.Chain.Length >= f2.Chain.Length ? f1.Chain : f2.Chain, op));
        if (f1 is not null && Scalar(b) is { } cb)
            return new RealFunction(f1.V, x => bin(f1.F(x), cb), Then(f1.Chain, op));
        if (f2 is not null && Scalar(a) is { } ca)
            return new RealFunction(f2.V, x => bin(ca, f2.F(x)), Then(f2.Chain, op));
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
                var name = Recognize(quantNode, f);
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

    /// <summary>The unit function equal to <paramref name="f"/> on every int8 code of its input, or an error.</summary>
    string Recognize(OnnxNode node, RealFunction f)
    {
        var q = f.V.Type.Quant!;
        var xs = Enumerable.Range(-128, 256).Select(c => (c - q.ZeroPoint) * q.Scale).ToArray();
        foreach (var name in QLut.Functions)
        {
            var fn = Functions.Parse(name);
            if (xs.All(x => Math.Abs(f.F(x) - Functions.Eval(fn, x)) <= 1e-5 * Math.Max(1, Math.Abs(Functions.Eval(fn, x)))))
                return name;
        }
        throw Error(node, $"the element-wise function ({(f.Chain.Length == 0 ? "identity" : f.Chain)}) of a dequantized tensor is not one the NN-LUT units compute ({string.Join(", ", QLut.Functions)}) nor a positive scaling");
    }
}
