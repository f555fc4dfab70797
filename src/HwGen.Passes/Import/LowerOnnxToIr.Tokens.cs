using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;

namespace HwGen.Passes.Import;

/// <summary>
/// A class token: a learned constant row concatenated in front of the tokens (Concat along the token axis of constants and one
/// activation), and the head reading a token (Gather or Slice along the token axis). Both are products on the activation
/// matmul engine with a constant 0/1 selection matrix S (int8, scale 1): S·X [.., T', T]·[.., T, D] copies X's rows to their
/// places (requantized at X's own scale, a multiplier of exactly 1, so every code is copied), and the Concat then adds the
/// constant rows (zero on X's rows) on the element-wise unit at the Concat's QuantizeLinear. Like mean pooling, S·X moves the
/// rows through the array (T·D MACs per output row) rather than by DMA: no layout unit is needed.
/// </summary>
public sealed partial class LowerOnnxToIr
{
    /// <summary>Gather along the token axis (the second last) of a dequantized activation with constant indices: a selection
    /// product (x[:, 0] reads the class token).</summary>
    Abs LowerGather(OnnxNode node, Abs?[] ins)
    {
        if (ins[0] is not RealView rv) throw Error(node, "Gather is supported on a dequantized activation with constant indices (reading tokens)");
        var idx = ConstIn(node, ins, 1, "indices").T;
        var shape = rv.V.Type.Shape;
        RequireTokenAxis(node, shape);
        int tokens = shape[^2];
        var rows = idx.Data.Select(i => (long)i < 0 ? (long)i + tokens : (long)i).ToArray();
        if (rows.FirstOrDefault(r => r < 0 || r >= tokens, -1) is var bad && bad != -1)
            throw Error(node, $"index {idx.Data[Array.IndexOf(rows, bad)]} is out of range for {tokens} tokens");
        int[] onnx = [.. shape.SkipLast(2), .. idx.Shape, shape[^1]];
        return LowerTokenSlice(node, rv, rows.Select(r => (int)r).ToArray(), onnx);
    }

    /// <summary>The node's axis is the token axis (the second last) of an activation [.., T, D] of rank 3 or more.</summary>
    void RequireTokenAxis(OnnxNode node, IReadOnlyList<int> shape)
    {
        long axis = node.Int("axis", 0);
        if (shape.Count < 3 || (axis != shape.Count - 2 && axis != -2))
            throw Error(node, $"{node.OpType} of an activation of shape {ShapeUtil.Format(shape)} along axis {axis}: only the token axis (the second " +
                "last, of an activation [.., T, D]) is supported");
    }

    /// <summary>The rows <paramref name="rows"/> of each sequence of x [.., T, D], as a pending product S·x (S [.., rows, T], one 1 per
    /// row) for the QuantizeLinear after it; <paramref name="onnxShape"/> when ONNX's shape differs in unit axes (a scalar index).</summary>
    Abs LowerTokenSlice(OnnxNode node, RealView x, int[] rows, int[]? onnxShape)
    {
        var shape = x.V.Type.Shape;
        int tokens = shape[^2];
        if (rows.Length == 0) throw Error(node, $"{node.OpType} selects no token");
        var s = Selection(node, shape.SkipLast(2).ToArray(), rows.Length, tokens, rows.Select((r, i) => (i, r)));
        return new PendingActMatMul(s, x.V, false, double.NegativeInfinity, double.PositiveInfinity, node.Name, Shape: onnxShape);
    }

    /// <summary>A constant selection matrix [lead.., m, k] of 0 and 1 (int8, scale 1) with a 1 at each (row, column) pair, for every sequence.</summary>
    Value Selection(OnnxNode node, int[] lead, int m, int k, IEnumerable<(int Row, int Col)> ones)
    {
        var one = new int[m * k];
        foreach (var (r, c) in ones) one[r * k + c] = 1;
        int sequences = ShapeUtil.Size(lead);
        var v = NewValue($"{node.Name}_select", new TensorType(DType.Int8, [.. lead, m, k], QuantParams.PerTensor(1, 0)));
        var codes = new int[sequences * m * k];
        for (int q = 0; q < sequences; q++) Array.Copy(one, 0, codes, q * one.Length, one.Length);
        Emit(new QConstant(Legal($"{node.Name}_select"), v, codes));
        return v;
    }

    /// <summary>Concat along the token axis of one dequantized activation [.., T, D] and constants [.., t, D] (a class token): the
    /// activation's rows copied to their places (S·x at x's scale), plus the constants' rows, an Add for the Concat's
    /// QuantizeLinear.</summary>
    Abs LowerConcat(OnnxNode node, Abs?[] ins)
    {
        var acts = ins.Where(a => a is not (Const or QConst)).ToList();
        if (acts.Count != 1 || acts[0] is not RealView x)
            throw Error(node, acts.Count > 1 ? $"Concat of {acts.Count} activations is not supported: only constant rows (a class token) and one activation"
                : "Concat is supported of constant rows (a class token) and one dequantized activation");
        var shape = x.V.Type.Shape;
        int rank = shape.Count;
        RequireTokenAxis(node, shape);
        int d = shape[^1], tokens = shape[^2];
        int[] lead = [.. shape.SkipLast(2)];
        var parts = new List<(Tensor? Rows, int Count)>();
        foreach (var a in ins)
        {
            if (a == x) { parts.Add((null, tokens)); continue; }
            var t = a is QConst q ? q.Real : ((Const)a!).T;
            bool fits = t.Rank == rank && t.Shape[^1] == d && t.Shape.SkipLast(2).Select((n, i) => n == 1 || n == lead[i]).All(ok => ok);
            if (!fits)
                throw Error(node, $"Concat of a constant of shape {ShapeUtil.Format(t.Shape)} with an activation of shape {ShapeUtil.Format(shape)}: the constant " +
                    $"must be [.., t, {d}] with the activation's leading dimensions (or 1)");
            parts.Add((t, t.Shape[^2]));
        }
        int total = parts.Sum(p => p.Count), at = parts.TakeWhile(p => p.Rows is not null).Sum(p => p.Count);
        var s = Selection(node, lead, total, tokens, Enumerable.Range(0, tokens).Select(i => (at + i, i)));
        var copy = EmitActMatMul(node, new PendingActMatMul(s, x.V, false, double.NegativeInfinity, double.PositiveInfinity, node.Name + "_rows"),
            x.V.Type.Quant!, FullRange);
        int[] outShape = [.. lead, total, d];
        int sequences = ShapeUtil.Size(lead);
        var real = new double[sequences * total * d];
        int row = 0;
        foreach (var (rows, count) in parts)
        {
            if (rows is not null)
            {
                var full = OnnxEvaluator.BroadcastOffsets(rows.Shape, [.. lead, count, d]);
                for (int q = 0; q < sequences; q++)
                    for (int e = 0; e < count * d; e++) real[(q * total + row) * d + e] = rows.Data[full[q * count * d + e]];
            }
            row += count;
        }
        return new PendingAdd(new ActOperand(copy), new ConstOperand(real, null, null), outShape, false, double.NegativeInfinity, double.PositiveInfinity, node.Name);
    }
}
