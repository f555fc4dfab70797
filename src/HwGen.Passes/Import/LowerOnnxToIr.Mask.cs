using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;

namespace HwGen.Passes.Import;

/// <summary>
/// Attention masks: an Add of a constant of zeros and large negative numbers to the scores before a Softmax is the
/// softmax's mask, not an addition. The softmax unit then takes only the kept positions, and a masked position gets
/// probability exactly 0 (ONNX gives exp(-10^4 or less) = 0 in float32 too). The QDQ pair ONNX Runtime's quantizer may put
/// between the Add and the Softmax quantizes the unmasked scores; the mask stays beside them.
/// </summary>
public sealed partial class LowerOnnxToIr
{
    /// <summary>A mask value at or below this is a masked position; 0 a kept one; anything else is no mask.</summary>
    const double MaskedBelow = -1e4;

    /// <summary>Dequantized scores <paramref name="V"/> with a mask (rows of keep flags, repeating over V's rows), waiting for
    /// their Softmax; <paramref name="OnnxType"/> is set between a QuantizeLinear and its DequantizeLinear.</summary>
    sealed record MaskedScores(Value V, bool[] Keep, int MaskRows, string Node, DType? OnnxType = null) : Abs;

    /// <summary>Add of a dequantized activation and a constant that is an attention mask (every value 0 or at most -10^4,
    /// some masked), as <see cref="MaskedScores"/>; null when the constant is no mask.</summary>
    Abs? LowerMaskAdd(OnnxNode node, Abs?[] ins)
    {
        if (node.OpType != "Add") return null;
        static bool IsMask(Abs? c) => c is Const { T: var t } && !t.Type.IsInteger() && t.Data.Any(v => v <= MaskedBelow) && t.Data.All(v => v == 0 || v <= MaskedBelow);
        if ((ins[0] as PendingActMatMul ?? ins[1] as PendingActMatMul) is { } product && IsMask(ins[0] is PendingActMatMul ? ins[1] : ins[0]))
            throw Error(node, $"an attention mask (0 and values at most -10^4) added to the product '{product.Node}' before it is quantized: quantize the " +
                "scores (QuantizeLinear, DequantizeLinear) between the MatMul and the mask's Add");
        var (scores, mask) = ins[0] is RealView a && ins[1] is Const m ? (a, m) : ins[1] is RealView b && ins[0] is Const k ? (b, k) : (null, null);
        if (scores is null || !IsMask(mask)) return null;
        var shape = scores.V.Type.Shape;
        var t = mask!.T;
        // The mask's rows: its last two axes must be the scores' (query rows, key positions); leading axes are 1 or, from the
        // right, the scores' (heads), so one mask serves every sequence of the batch.
        int rank = shape.Count;
        if (rank < 2)
            throw Error(node, $"an Add of an attention mask (0 and values at most -10^4) to an activation of shape {ShapeUtil.Format(shape)}: " +
                "a mask goes on attention scores [.., query rows, key positions] before their Softmax");
        bool fits = t.Rank >= 2 && t.Rank <= rank && t.Shape[^1] == shape[^1] && t.Shape[^2] == shape[^2];
        int lead = 0;
        for (int i = t.Rank - 3; fits && i >= 0; i--)
        {
            int d = t.Shape[i], sd = shape[rank - t.Rank + i];
            if (d != 1 && d != sd) fits = false;
            else if (d != 1 && lead != t.Rank - 3 - i) fits = false;  // heads only: the axes right after the rows
            else if (d != 1) lead++;
        }
        if (!fits)
            throw Error(node, $"the attention mask of shape {ShapeUtil.Format(t.Shape)} does not match the scores {ShapeUtil.Format(shape)}: it must be " +
                $"[{shape[^2]}, {shape[^1]}] (query rows, key positions), with leading axes of 1 or of the heads");
        int n = shape[^1], rows = (int)(t.Size / n);
        var keep = t.Data.Select(v => v == 0).ToArray();
        for (int r = 0; r < rows; r++)
            if (!keep.AsSpan(r * n, n).Contains(true))
                throw Error(node, $"row {r % shape[^2]}{(rows > shape[^2] ? $" of head {r / shape[^2]}" : "")} of the attention mask masks every position: " +
                    "its softmax would divide by zero");
        return new MaskedScores(scores.V, keep, rows, node.Name);
    }

    /// <summary>The mask as a constant of codes (1 keep, 0 masked) in activation layout, for the softmax's second operand.</summary>
    Value EmitMask(MaskedScores s)
    {
        int n = s.V.Type.Shape[^1];
        var v = NewValue($"{s.Node}_mask", new TensorType(DType.Int8, [s.MaskRows, n], QuantParams.PerTensor(1, 0)));
        return Emit(new QConstant(Legal($"{s.Node}_mask"), v, s.Keep.Select(k => k ? 1 : 0).ToArray()));
    }

    /// <summary>QuantizeLinear of masked scores: the unmasked scores quantized (the masked ones are never read), the mask kept.</summary>
    Abs QuantizeMasked(OnnxNode node, MaskedScores s, QuantParams q, DType onnxType) =>
        s with { V = QuantizeTo(node, new RealView(s.V), q, FullRange, null), OnnxType = onnxType };

    /// <summary>DequantizeLinear of quantized masked scores, with the parameters they were quantized with.</summary>
    Abs DequantizeMasked(OnnxNode node, MaskedScores s, Abs?[] ins) =>
        s.V.Type.Quant!.SameAs(ActivationQuant(node, ins).Quant) ? s with { OnnxType = null }
            : throw Error(node, "DequantizeLinear parameters differ from those the tensor was quantized with");
}
