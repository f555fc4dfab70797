using HwGen.Core;

namespace HwGen.Onnx;

/// <summary>
/// Shape and data-movement ops with ONNX semantics: Shape, Gather, Slice, Concat, Split, Unsqueeze, Squeeze, Expand, and
/// the Equal and Where torch writes into its shape arithmetic. The importer folds them on constants (shape arithmetic of a
/// static input shape), and lowers a class token's Concat, Gather and Slice on activations (LowerOnnxToIr.Tokens).
/// </summary>
public static partial class OnnxEvaluator
{
    /// <summary>The shape and data-movement ops' dispatch; null for any other op.</summary>
    static Tensor[]? ShapeOp(OnnxNode node, Tensor?[] x, long opset, Func<int, Tensor> input, Func<int, Tensor?> optional) => node.OpType switch
    {
        "Shape" => [ShapeOf(input(0).Shape, node.Attributes.ContainsKey("start") ? node.Int("start", 0) : null,
            node.Attributes.ContainsKey("end") ? node.Int("end", 0) : null)],
        "Gather" => [Gather(input(0), input(1), (int)node.Int("axis", 0))],
        "Slice" => [opset < 10 ? Slice(input(0), node.Ints("starts")!, node.Ints("ends")!, node.Ints("axes"), null)
            : Slice(input(0), Longs(input(1)), Longs(input(2)), optional(3) is { } a ? Longs(a) : null, optional(4) is { } s ? Longs(s) : null)],
        "Concat" => [Concat(x.Select((t, i) => t ?? throw new ArgumentException($"input {i} is missing")).ToArray(), (int)node.Int("axis", 0))],
        "Split" => Split(input(0), (int)node.Int("axis", 0), node.Outputs.Count,
            opset < 13 ? node.Ints("split") : optional(1) is { } s ? Longs(s) : null),
        "Unsqueeze" => [Unsqueeze(input(0), opset < 13 ? node.Ints("axes")! : Longs(input(1)))],
        "Squeeze" => [Squeeze(input(0), opset < 13 ? node.Ints("axes") : optional(1) is { } a ? Longs(a) : null)],
        "Expand" => [Expand(input(0), Longs(input(1)))],
        "Equal" => [Compare(input(0), input(1))],
        "Where" => [Where(input(0), input(1), input(2))],
        _ => null,
    };

    static long[] Longs(Tensor t) => t.Data.Select(v => (long)v).ToArray();

    /// <summary>An axis in [-rank, rank) made non-negative.</summary>
    static int Axis(long axis, int rank, string what = "axis")
    {
        if (axis < -rank || axis >= rank) throw new ArgumentException($"{what} {axis} is out of range for rank {rank}");
        return (int)(axis < 0 ? axis + rank : axis);
    }

    public static Tensor ShapeOf(IReadOnlyList<int> shape, long? start, long? end)
    {
        int r = shape.Count;
        int s = (int)Math.Clamp(start is { } a ? a < 0 ? a + r : a : 0, 0, r), e = (int)Math.Clamp(end is { } b ? b < 0 ? b + r : b : r, 0, r);
        var dims = shape.Skip(s).Take(Math.Max(0, e - s)).Select(d => (double)d).ToArray();
        return new Tensor(DType.Int64, [dims.Length], dims);
    }

    public static Tensor Gather(Tensor x, Tensor indices, int axis)
    {
        if (!indices.Type.IsInteger()) throw new ArgumentException("indices must be integers");
        axis = Axis(axis, x.Rank);
        int n = x.Shape[axis], outer = ShapeUtil.Size(x.Shape[..axis]), inner = ShapeUtil.Size(x.Shape[(axis + 1)..]);
        var shape = Allocatable([.. x.Shape[..axis].Select(d => (long)d), .. indices.Shape.Select(d => (long)d), .. x.Shape[(axis + 1)..].Select(d => (long)d)]);
        var data = new double[ShapeUtil.Size(shape)];
        int k = 0;
        for (int o = 0; o < outer; o++)
            foreach (var iv in indices.Data)
            {
                long i = (long)iv < 0 ? (long)iv + n : (long)iv;
                if (i < 0 || i >= n) throw new ArgumentException($"index {iv} is out of range for axis {axis} of size {n}");
                Array.Copy(x.Data, ((long)o * n + i) * inner, data, k, inner);
                k += inner;
            }
        return new Tensor(x.Type, shape, data);
    }

    /// <summary>The (start, step, count) Slice takes along each axis of <paramref name="shape"/> (ONNX's clamping of starts and ends).</summary>
    public static (int Start, int Step, int Count)[] SliceRanges(IReadOnlyList<int> shape, IReadOnlyList<long> starts, IReadOnlyList<long> ends,
        IReadOnlyList<long>? axes, IReadOnlyList<long>? steps)
    {
        int r = shape.Count;
        if (starts.Count != ends.Count || axes is not null && axes.Count != starts.Count || steps is not null && steps.Count != starts.Count)
            throw new ArgumentException("starts, ends, axes and steps must have the same length");
        var ranges = shape.Select(d => (0, 1, d)).ToArray();
        var seen = new HashSet<int>();
        for (int i = 0; i < starts.Count; i++)
        {
            int axis = Axis(axes?[i] ?? i, r);
            if (!seen.Add(axis)) throw new ArgumentException($"axis {axis} is sliced twice");
            long dim = shape[axis], step = steps?[i] ?? 1;
            if (step == 0) throw new ArgumentException("a step of 0");
            long s = starts[i] < 0 ? starts[i] + dim : starts[i], e = ends[i] < 0 ? ends[i] + dim : ends[i];
            s = step > 0 ? Math.Clamp(s, 0, dim) : Math.Clamp(s, 0, dim - 1);
            e = step > 0 ? Math.Clamp(e, 0, dim) : Math.Clamp(e, -1, dim - 1);
            long count = step > 0 ? Math.Max(0, (e - s + step - 1) / step) : Math.Max(0, (s - e + (-step) - 1) / (-step));
            ranges[axis] = ((int)s, (int)step, (int)count);
        }
        return ranges;
    }

    public static Tensor Slice(Tensor x, IReadOnlyList<long> starts, IReadOnlyList<long> ends, IReadOnlyList<long>? axes, IReadOnlyList<long>? steps)
    {
        var ranges = SliceRanges(x.Shape, starts, ends, axes, steps);
        var shape = ranges.Select(r => r.Count).ToArray();
        var inStr = ShapeUtil.Strides(x.Shape);
        var data = new double[ShapeUtil.Size(shape)];
        var idx = new int[shape.Length];
        for (int e = 0; e < data.Length; e++)
        {
            long off = 0;
            for (int d = 0; d < shape.Length; d++) off += (long)(ranges[d].Start + idx[d] * ranges[d].Step) * inStr[d];
            data[e] = x.Data[off];
            for (int d = shape.Length - 1; d >= 0; d--) { if (++idx[d] < shape[d]) break; idx[d] = 0; }
        }
        return new Tensor(x.Type, shape, data);
    }

    public static Tensor Concat(Tensor[] xs, int axis)
    {
        if (xs.Length == 0) throw new ArgumentException("no inputs");
        var first = xs[0];
        axis = Axis(axis, first.Rank);
        foreach (var t in xs)
            if (t.Rank != first.Rank || t.Type != first.Type || Enumerable.Range(0, first.Rank).Any(d => d != axis && t.Shape[d] != first.Shape[d]))
                throw new ArgumentException($"inputs {string.Join(", ", xs.Select(t => ShapeUtil.Format(t.Shape)))} differ outside axis {axis}");
        var shape = first.Shape.ToArray();
        shape[axis] = xs.Sum(t => t.Shape[axis]);
        Allocatable(shape.Select(d => (long)d));
        int outer = ShapeUtil.Size(first.Shape[..axis]);
        var data = new double[ShapeUtil.Size(shape)];
        int k = 0;
        for (int o = 0; o < outer; o++)
            foreach (var t in xs)
            {
                int block = ShapeUtil.Size(t.Shape[axis..]);
                Array.Copy(t.Data, (long)o * block, data, k, block);
                k += block;
            }
        return new Tensor(first.Type, shape, data);
    }

    static Tensor[] Split(Tensor x, int axis, int outputs, IReadOnlyList<long>? split)
    {
        axis = Axis(axis, x.Rank);
        int n = x.Shape[axis];
        long[] sizes = split?.ToArray() ?? Enumerable.Repeat((long)((n + outputs - 1) / outputs), outputs).Select((s, i) => Math.Min(s, Math.Max(0, n - i * s))).ToArray();
        if (sizes.Length != outputs || sizes.Any(s => s < 0) || sizes.Sum() != n)
            throw new ArgumentException($"split [{string.Join(", ", sizes)}] does not divide axis {axis} of size {n} into {outputs} outputs");
        long start = 0;
        return sizes.Select(s => Slice(x, [start], [start += s], [axis], null)).ToArray();
    }

    public static Tensor Unsqueeze(Tensor x, IReadOnlyList<long> axes)
    {
        int r = x.Rank + axes.Count;
        var at = axes.Select(a => Axis(a, r)).ToHashSet();
        if (at.Count != axes.Count) throw new ArgumentException("an axis is repeated");
        var shape = new int[r];
        for (int d = 0, k = 0; d < r; d++) shape[d] = at.Contains(d) ? 1 : x.Shape[k++];
        return x.Reshaped(shape);
    }

    static Tensor Squeeze(Tensor x, IReadOnlyList<long>? axes)
    {
        var at = axes?.Select(a => Axis(a, x.Rank)).ToHashSet() ?? Enumerable.Range(0, x.Rank).Where(d => x.Shape[d] == 1).ToHashSet();
        if (at.Any(d => x.Shape[d] != 1)) throw new ArgumentException($"axis {at.First(d => x.Shape[d] != 1)} has size {x.Shape[at.First(d => x.Shape[d] != 1)]}, not 1");
        return x.Reshaped(x.Shape.Where((_, d) => !at.Contains(d)).ToArray());
    }

    static Tensor Expand(Tensor x, IReadOnlyList<long> shape)
    {
        if (shape.Any(d => d < 0)) throw new ArgumentException($"shape [{string.Join(", ", shape)}] has a negative entry");
        var target = BroadcastShape(x.Shape, Allocatable(shape));
        var offs = BroadcastOffsets(x.Shape, target);
        return new Tensor(x.Type, target, offs.Select(o => x.Data[o]).ToArray());
    }

    static Tensor Compare(Tensor a, Tensor b)
    {
        if (a.Type != b.Type) throw new ArgumentException($"inputs are {a.Type.Name()} and {b.Type.Name()}");
        var y = Binary(a, b, (p, q) => p == q ? 1 : 0);
        return new Tensor(DType.Bool, y.Shape, y.Data);
    }

    static Tensor Where(Tensor c, Tensor a, Tensor b)
    {
        if (a.Type != b.Type) throw new ArgumentException($"inputs are {a.Type.Name()} and {b.Type.Name()}");
        var shape = BroadcastShape(BroadcastShape(c.Shape, a.Shape), b.Shape);
        var oc = BroadcastOffsets(c.Shape, shape); var oa = BroadcastOffsets(a.Shape, shape); var ob = BroadcastOffsets(b.Shape, shape);
        return new Tensor(a.Type, shape, oc.Select((o, i) => c.Data[o] != 0 ? a.Data[oa[i]] : b.Data[ob[i]]).ToArray());
    }
}
