using HwGen.Core;
using HwGen.Reference;

namespace HwGen.Onnx;

/// <summary>
/// Golden model (a): ONNX semantics for every op HwGen supports, evaluated in float32 (integers exactly).
/// Checked against the ONNX conformance node tests. Also used by the importer to fold constant subgraphs.
/// </summary>
public static partial class OnnxEvaluator
{
    public static readonly IReadOnlySet<string> SupportedOps = new HashSet<string>
    {
        "Constant", "ConstantOfShape", "Identity", "Cast", "QuantizeLinear", "DequantizeLinear", "QLinearMatMul",
        "MatMulInteger", "MatMul", "Gemm", "Conv", "QLinearConv", "Add", "Sub", "Mul", "Div", "Relu", "Clip", "Reshape", "Flatten", "Transpose",
        "Erf", "Gelu", "Sigmoid", "Tanh", "Sqrt", "Exp", "Pow", "ReduceMean", "Softmax", "LayerNormalization",
        "Shape", "Gather", "Slice", "Concat", "Split", "Unsqueeze", "Squeeze", "Expand", "Equal", "Where",
    };

    /// <summary>Runs the whole model; returns every graph output by name.</summary>
    public static Dictionary<string, Tensor> Run(OnnxModel model, IReadOnlyDictionary<string, Tensor> inputs)
    {
        var env = new Dictionary<string, Tensor>(model.Initializers);
        foreach (var i in model.RuntimeInputs)
        {
            if (!inputs.TryGetValue(i.Name, out var t)) throw HwGenException.At(model.Path, null, $"no value given for input '{i.Name}'");
            env[i.Name] = t;
        }
        foreach (var node in model.Nodes)
        {
            var ins = node.Inputs.Select(n => n.Length == 0 ? null : env.TryGetValue(n, out var t) ? t
                : throw HwGenException.At(model.Path, node.Name, $"input '{n}' is not defined")).ToArray();
            var outs = Evaluate(node, ins, model.Path, model.Opset);
            for (int k = 0; k < outs.Length && k < node.Outputs.Count; k++) env[node.Outputs[k]] = outs[k];
        }
        return model.Outputs.ToDictionary(o => o.Name, o => env[o.Name]);
    }

    /// <summary>One node; <paramref name="opset"/> matters where an op's defaults changed (Softmax's axis at 13).</summary>
    public static Tensor[] Evaluate(OnnxNode node, Tensor?[] x, string file, long opset = 18)
    {
        Tensor In(int i) => i < x.Length && x[i] is { } t ? t : throw HwGenException.At(file, node.Name, $"{node.OpType} needs input {i}");
        Tensor? Opt(int i) => i < x.Length ? x[i] : null;
        try
        {
            if (QonnxQuant.Is(node)) return [Qonnx(node, x, file)];
            if (ShapeOp(node, x, opset, In, Opt) is { } moved) return moved;
            return node.OpType switch
            {
                "Constant" => [ConstantValue(node, file)],
                "ConstantOfShape" => [ConstantOfShape(In(0), node.Attributes.TryGetValue("value", out var v) ? v.Tensor : null)],
                "Identity" => [In(0)],
                "Cast" => [Cast(In(0), OnnxLoader.ToDType((int)node.Int("to", 1), file, node.Name))],
                "QuantizeLinear" => [QuantizeLinear(In(0), In(1), Opt(2), (int)node.Int("axis", 1))],
                "DequantizeLinear" => [DequantizeLinear(In(0), In(1), Opt(2), (int)node.Int("axis", 1))],
                "QLinearMatMul" => [QLinearMatMul(In(0), In(1), In(2), In(3), In(4), In(5), In(6), In(7))],
                "MatMulInteger" => [MatMulInteger(In(0), In(1), Opt(2), Opt(3))],
                "MatMul" => [MatMul(In(0), In(1))],
                "Conv" => [Conv(node, In(0), In(1), Opt(2))],
                "QLinearConv" => [QLinearConv(node, In(0), In(1), In(2), In(3), In(4), In(5), In(6), In(7), Opt(8))],
                "Gemm" => [Gemm(In(0), In(1), Opt(2), node.Float("alpha", 1), node.Float("beta", 1), node.Int("transA", 0) != 0, node.Int("transB", 0) != 0)],
                "QGemm" => [QGemm(node, In(0), In(1), Opt(2), In(3), In(4), Opt(5), Opt(6), Opt(7), Opt(8))],
                "QLinearAdd" => [QLinearAdd(In(0), In(1), Opt(2), In(3), In(4), Opt(5), In(6), Opt(7))],
                "Add" => [Binary(In(0), In(1), (a, b) => a + b)],
                "Sub" => [Binary(In(0), In(1), (a, b) => a - b)],
                "Mul" => [Binary(In(0), In(1), (a, b) => a * b)],
                "Div" => [Binary(In(0), In(1), (a, b) => b == 0 && In(0).Type.IsInteger() ? 0 : a / b, truncate: true)],
                "Relu" => [Map(In(0), v => Math.Max(v, 0))],
                "Clip" => [Clip(node, In(0), Opt(1), Opt(2))],
                "Reshape" => [Reshape(In(0), In(1), node.Int("allowzero", 0) != 0)],
                "Flatten" => [Flatten(In(0), (int)node.Int("axis", 1))],
                "Transpose" => [Transpose(In(0), node.Ints("perm"))],
                "Erf" or "Gelu" or "Sigmoid" or "Tanh" or "Sqrt" or "Exp" or "Pow" or "ReduceMean" or "Softmax" or "LayerNormalization" => Nonlinear(node, x, opset, file),
                _ => throw HwGenException.At(file, node.Name, $"unsupported op {node.OpType}"),
            };
        }
        catch (ArgumentException e)
        {
            throw HwGenException.At(file, node.Name, $"{node.OpType}: {e.Message}");
        }
    }

    static Tensor ConstantValue(OnnxNode node, string file)
    {
        var a = node.Attributes.Values.FirstOrDefault() ?? throw HwGenException.At(file, node.Name, "Constant has no value attribute");
        return a.Name switch
        {
            "value" when a.Tensor is not null => a.Tensor,
            "value_float" => Tensor.Scalar(DType.Float32, a.Float ?? 0),
            "value_int" => Tensor.Scalar(DType.Int64, a.Int ?? 0),
            "value_floats" => new Tensor(DType.Float32, [a.Floats!.Count], a.Floats.Select(f => (double)f).ToArray()),
            "value_ints" => new Tensor(DType.Int64, [a.Ints!.Count], a.Ints.Select(f => (double)f).ToArray()),
            _ => throw HwGenException.At(file, node.Name, $"Constant attribute '{a.Name}' is not supported"),
        };
    }

    static Tensor ConstantOfShape(Tensor shape, Tensor? value)
    {
        var dims = Allocatable(shape.Data.Select(d => (long)d));
        var v = value ?? Tensor.Scalar(DType.Float32, 0);
        if (v.Size != 1) throw new ArgumentException($"value must hold one element, got {v.Size}");
        return new Tensor(v.Type, dims, Enumerable.Repeat(v.Data[0], ShapeUtil.Size(dims)).ToArray());
    }

    /// <summary>A result shape within <see cref="Limits"/>, checked before the result is allocated.</summary>
    static int[] Allocatable(IEnumerable<long> dims)
    {
        var d = dims.ToArray();
        if (Limits.ShapeProblem(d) is { } why) throw new ArgumentException($"the result would be too large: {why}");
        return d.Select(x => (int)x).ToArray();
    }

    public static Tensor Cast(Tensor x, DType to) => new(to, x.Shape, x.Data.Select(v => CastValue(v, to)).ToArray());

    static double CastValue(double v, DType to)
    {
        if (to == DType.Float32) return (float)v;
        if (to == DType.Float64) return v;
        if (to == DType.Bool) return v != 0 ? 1 : 0;
        // Float to integer truncates toward zero; integers wrap to the target width.
        long i = (long)Math.Truncate(v);
        int bits = to.Bits();
        if (bits == 64) return i;
        long mask = (1L << bits) - 1, u = i & mask;
        return to.IsSigned() && u >= 1L << (bits - 1) ? u - (1L << bits) : u;
    }

    /// <summary>Index of the per-axis scale (and zero point, which must have the scale's shape) for each element of a tensor
    /// of shape <paramref name="shape"/>.</summary>
    static Func<int, int> AxisIndex(int[] shape, Tensor param, Tensor? zp, int axis)
    {
        if (zp is not null && !zp.Shape.SequenceEqual(param.Shape))
            throw new ArgumentException($"zero point of shape {ShapeUtil.Format(zp.Shape)} does not match its scale's {ShapeUtil.Format(param.Shape)}");
        if (param.Size == 1) return _ => 0;
        if (axis < 0) axis += shape.Length;
        if (param.Rank != 1 || axis < 0 || axis >= shape.Length || param.Shape[0] != shape[axis])
            throw new ArgumentException($"per-axis parameter of shape {ShapeUtil.Format(param.Shape)} does not match axis {axis} of {ShapeUtil.Format(shape)}");
        int inner = ShapeUtil.Strides(shape)[axis], n = shape[axis];
        return i => i / inner % n;
    }

    public static Tensor QuantizeLinear(Tensor x, Tensor scale, Tensor? zp, int axis)
    {
        var target = zp?.Type ?? DType.UInt8;
        var ix = AxisIndex(x.Shape, scale, zp, axis);
        var data = new double[x.Size];
        for (int i = 0; i < data.Length; i++)
        {
            int c = ix(i);
            data[i] = QuantMath.Quantize(x.Data[i], scale.Data[c], zp is null ? 0 : (long)zp.Data[c], target);
        }
        return new Tensor(target, x.Shape, data);
    }

    public static Tensor DequantizeLinear(Tensor x, Tensor scale, Tensor? zp, int axis)
    {
        var ix = AxisIndex(x.Shape, scale, zp, axis);
        var data = new double[x.Size];
        for (int i = 0; i < data.Length; i++)
        {
            int c = ix(i);
            data[i] = QuantMath.Dequantize((long)x.Data[i], scale.Data[c], zp is null ? 0 : (long)zp.Data[c]);
        }
        return new Tensor(DType.Float32, x.Shape, data);
    }

    /// <summary>numpy matmul over the last two axes with broadcast batch axes; elementwise product via <paramref name="term"/>.</summary>
    static Tensor MatMulCore(Tensor a, Tensor b, DType outType, Func<int, int, int, int, double> term, bool roundF32)
    {
        if (a.Rank == 0 || b.Rank == 0) throw new ArgumentException($"matrix product of a scalar: {ShapeUtil.Format(a.Shape)} x {ShapeUtil.Format(b.Shape)}");
        var sa = a.Rank == 1 ? new[] { 1, a.Shape[0] } : a.Shape;
        var sb = b.Rank == 1 ? new[] { b.Shape[0], 1 } : b.Shape;
        int m = sa[^2], k = sa[^1], n = sb[^1];
        if (sb[^2] != k) throw new ArgumentException($"inner dimensions differ: {ShapeUtil.Format(a.Shape)} x {ShapeUtil.Format(b.Shape)}");
        var batchA = sa[..^2]; var batchB = sb[..^2];
        var batch = BroadcastShape(batchA, batchB);
        int nb = ShapeUtil.Size(batch);
        Allocatable([nb, m, n]);
        var offA = BroadcastOffsets(batchA, batch); var offB = BroadcastOffsets(batchB, batch);
        var data = new double[nb * m * n];
        for (int bi = 0; bi < nb; bi++)
            for (int i = 0; i < m; i++)
                for (int j = 0; j < n; j++)
                {
                    double acc = 0;
                    for (int p = 0; p < k; p++) acc += term(offA[bi] * m * k + i * k + p, offB[bi] * k * n + p * n + j, i, j);
                    data[(bi * m + i) * n + j] = roundF32 ? (float)acc : acc;
                }
        var shape = batch.Concat(a.Rank == 1 ? [] : new[] { m }).Concat(b.Rank == 1 ? [] : new[] { n }).ToArray();
        return new Tensor(outType, shape, data);
    }

    public static Tensor MatMul(Tensor a, Tensor b) =>
        MatMulCore(a, b, a.Type, (ia, ib, _, _) => a.Data[ia] * b.Data[ib], !a.Type.IsInteger());

    public static Tensor MatMulInteger(Tensor a, Tensor b, Tensor? azp, Tensor? bzp)
    {
        // ONNX: a zero point per tensor, or one per row of A (its dim -2) / per column of B (its last dim).
        void Fits(Tensor? zp, string what, int count)
        {
            if (zp is not null && zp.Size != 1 && zp.Size != count)
                throw new ArgumentException($"{what} zero point of shape {ShapeUtil.Format(zp.Shape)} is neither one value nor one per {(what == "A" ? "row" : "column")} ({count})");
        }
        Fits(azp, "A", a.Rank >= 2 ? a.Shape[^2] : 1);
        Fits(bzp, "B", b.Rank >= 1 ? b.Shape[^1] : 1);
        double Za(int row) => azp is null ? 0 : azp.Size == 1 ? azp.Data[0] : azp.Data[row];
        double Zb(int col) => bzp is null ? 0 : bzp.Size == 1 ? bzp.Data[0] : bzp.Data[col];
        return MatMulCore(a, b, DType.Int32, (ia, ib, i, j) => (a.Data[ia] - Za(i)) * (b.Data[ib] - Zb(j)), false);
    }

    public static Tensor QLinearMatMul(Tensor a, Tensor asc, Tensor azp, Tensor b, Tensor bsc, Tensor bzp, Tensor ysc, Tensor yzp)
    {
        var acc = MatMulInteger(a, b, azp, bzp);
        // Real value of each accumulator, then ONNX quantization of the result (scales per tensor or per column of b).
        var data = new double[acc.Size];
        int n = acc.Shape[^1];
        for (int i = 0; i < data.Length; i++)
        {
            double bs = bsc.Size == 1 ? bsc.Data[0] : bsc.Data[i % n];
            float real = (float)(acc.Data[i] * (float)((float)asc.Data[0] * (float)bs));
            data[i] = QuantMath.Quantize(real, ysc.Data[0], (long)yzp.Data[0], yzp.Type);
        }
        return new Tensor(yzp.Type, acc.Shape, data);
    }

    public static Tensor Gemm(Tensor a, Tensor b, Tensor? c, float alpha, float beta, bool transA, bool transB)
    {
        if (a.Rank != 2 || b.Rank != 2) throw new ArgumentException("Gemm needs 2-D A and B");
        var at = transA ? Transpose(a, [1, 0]) : a;
        var bt = transB ? Transpose(b, [1, 0]) : b;
        var y = MatMulCore(at, bt, a.Type, (ia, ib, _, _) => at.Data[ia] * bt.Data[ib], false);
        var data = y.Data.Select(v => (double)(float)(alpha * v)).ToArray();
        var scaled = new Tensor(y.Type, y.Shape, data);
        if (c is null) return scaled;
        var bc = Binary(scaled, Map(c, v => (float)(beta * v)), (p, q) => p + q);
        if (!bc.Shape.SequenceEqual(y.Shape)) throw new ArgumentException($"bias of shape {ShapeUtil.Format(c.Shape)} does not broadcast to {ShapeUtil.Format(y.Shape)}");
        return bc;
    }

    public static Tensor Map(Tensor x, Func<double, double> f) => x.Map(f);

    static Tensor Clip(OnnxNode node, Tensor x, Tensor? min, Tensor? max)
    {
        double lo = min?.Data[0] ?? node.Float("min", float.MinValue), hi = max?.Data[0] ?? node.Float("max", float.MaxValue);
        if (!x.Type.IsInteger()) { lo = min is null && !node.Attributes.ContainsKey("min") ? double.NegativeInfinity : lo; hi = max is null && !node.Attributes.ContainsKey("max") ? double.PositiveInfinity : hi; }
        return Map(x, v => Math.Min(Math.Max(v, lo), hi));
    }

    public static int[] BroadcastShape(IReadOnlyList<int> a, IReadOnlyList<int> b)
    {
        int r = Math.Max(a.Count, b.Count);
        var s = new int[r];
        for (int i = 0; i < r; i++)
        {
            int da = i - (r - a.Count) >= 0 ? a[i - (r - a.Count)] : 1, db = i - (r - b.Count) >= 0 ? b[i - (r - b.Count)] : 1;
            if (da != db && da != 1 && db != 1) throw new ArgumentException($"shapes {ShapeUtil.Format(a)} and {ShapeUtil.Format(b)} do not broadcast");
            s[i] = Math.Max(da, db);
        }
        return Allocatable(s.Select(d => (long)d));
    }

    /// <summary>For each element of <paramref name="outShape"/>, the offset of the element of <paramref name="inShape"/> broadcast to it.</summary>
    /// <summary>For each element of <paramref name="outShape"/>, the offset of the element of <paramref name="inShape"/> that
    /// broadcasts to it (numpy rules, one way: <paramref name="inShape"/> must broadcast to <paramref name="outShape"/>).</summary>
    public static int[] BroadcastOffsets(IReadOnlyList<int> inShape, int[] outShape)
    {
        int r = outShape.Length, n = ShapeUtil.Size(outShape);
        if (inShape.Count > r || inShape.Where((d, i) => d != 1 && d != outShape[i + r - inShape.Count]).Any())
            throw new ArgumentException($"shape [{string.Join(", ", inShape)}] does not broadcast to [{string.Join(", ", outShape)}]");
        var inStr = ShapeUtil.Strides(inShape);
        var offs = new int[n];
        var idx = new int[r];
        for (int e = 0; e < n; e++)
        {
            int off = 0;
            for (int d = 0; d < inShape.Count; d++)
            {
                int od = d + r - inShape.Count;
                off += inShape[d] == 1 ? 0 : idx[od] * inStr[d];
            }
            offs[e] = off;
            for (int d = r - 1; d >= 0; d--) { if (++idx[d] < outShape[d]) break; idx[d] = 0; }
        }
        return offs;
    }

    public static Tensor Binary(Tensor a, Tensor b, Func<double, double, double> f, bool truncate = false)
    {
        var shape = BroadcastShape(a.Shape, b.Shape);
        var oa = BroadcastOffsets(a.Shape, shape); var ob = BroadcastOffsets(b.Shape, shape);
        bool isInt = a.Type.IsInteger();
        var data = new double[oa.Length];
        for (int i = 0; i < data.Length; i++)
        {
            double v = f(a.Data[oa[i]], b.Data[ob[i]]);
            data[i] = isInt ? CastValue(truncate ? Math.Truncate(v) : v, a.Type) : a.Type == DType.Float32 ? (float)v : v;
        }
        return new Tensor(a.Type, shape, data);
    }

    public static int[] ReshapeTarget(int[] inShape, IReadOnlyList<long> spec, bool allowZero)
    {
        var s = new int[spec.Count];
        int infer = -1;
        for (int i = 0; i < spec.Count; i++)
        {
            if (spec[i] == -1) { if (infer >= 0) throw new ArgumentException("more than one -1 in the target shape"); infer = i; s[i] = 1; }
            else if (spec[i] == 0 && !allowZero) s[i] = i < inShape.Length ? inShape[i] : throw new ArgumentException("0 in target shape past the input rank");
            else if (spec[i] < 0 || spec[i] > int.MaxValue)
                throw new ArgumentException($"target shape [{string.Join(",", spec)}] has the entry {spec[i]} (entries are -1, 0 or sizes up to 2^31-1)");
            else s[i] = (int)spec[i];
        }
        long total = Elements(inShape);
        if (infer >= 0)
        {
            long rest = Elements(s);
            if (rest == 0 || total % rest != 0) throw new ArgumentException($"cannot reshape {ShapeUtil.Format(inShape)} to [{string.Join(",", spec)}]");
            s[infer] = (int)(total / rest);
        }
        if (Elements(s) != total) throw new ArgumentException($"cannot reshape {ShapeUtil.Format(inShape)} ({total} elements) to [{string.Join(",", spec)}]");
        return s;
    }

    /// <summary>The product of dims of at most 2^31 each, saturated at 2^31 (so a target shape's product never overflows).</summary>
    static long Elements(IEnumerable<int> dims) => dims.Aggregate(1L, (n, d) => Math.Min(n * d, 1L << 31));

    static Tensor Reshape(Tensor x, Tensor shape, bool allowZero) =>
        x.Reshaped(ReshapeTarget(x.Shape, shape.Data.Select(d => (long)d).ToArray(), allowZero));

    public static int[] FlattenTarget(int[] shape, int axis)
    {
        if (axis < 0) axis += shape.Length;
        if (axis < 0 || axis > shape.Length) throw new ArgumentException($"axis out of range for rank {shape.Length}");
        return [ShapeUtil.Size(shape[..axis]), ShapeUtil.Size(shape[axis..])];
    }

    static Tensor Flatten(Tensor x, int axis) => x.Reshaped(FlattenTarget(x.Shape, axis));

    public static Tensor Transpose(Tensor x, IReadOnlyList<long>? perm)
    {
        int r = x.Rank;
        var p = perm?.Select(v => (int)v).ToArray() ?? Enumerable.Range(0, r).Reverse().ToArray();
        if (p.Length != r || p.OrderBy(v => v).Where((v, i) => v != i).Any()) throw new ArgumentException($"perm [{string.Join(",", p)}] is not a permutation of rank {r}");
        var outShape = p.Select(d => x.Shape[d]).ToArray();
        var inStr = ShapeUtil.Strides(x.Shape);
        var data = new double[x.Size];
        var idx = new int[r];
        for (int e = 0; e < data.Length; e++)
        {
            int off = 0;
            for (int d = 0; d < r; d++) off += idx[d] * inStr[p[d]];
            data[e] = x.Data[off];
            for (int d = r - 1; d >= 0; d--) { if (++idx[d] < outShape[d]) break; idx[d] = 0; }
        }
        return new Tensor(x.Type, outShape, data);
    }
}
