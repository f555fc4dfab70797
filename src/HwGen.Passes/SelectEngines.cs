using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Passes;

/// <summary>
/// Places every op: QGemm on the dense MAC-array engine; Reshape as a layout no-op (it must keep the leading
/// row dimension, since activations are stored feature-major per row); Quantize/Dequantize on the host.
/// Anything else has no engine yet and is an error naming the op.
/// </summary>
public sealed class SelectEngines : IPass
{
    public const string Dense = "dense";
    /// <summary>The vector engine with NN-LUT units (softmax, LayerNorm, element-wise tables).</summary>
    public const string NnLut = "nnlut";
    public string Name => nameof(SelectEngines);

    public void Run(Graph graph, HwConfig config)
    {
        foreach (var op in graph.Ops.ToList())
        {
            switch (op)
            {
                case QGemm g:
                    graph.Replace(g, g with { Engine = Dense });
                    break;
                case QNonlinear n:
                    var unit = n with { Engine = NnLut, Entries = config.LutEntries };
                    HwGen.Reference.NnLut.NnLutOps.Check(unit);
                    graph.Replace(n, unit);
                    break;
                case Reshape r when Rows(r.Input.Type.Shape) == Rows(r.NewShape):
                case Quantize or Dequantize:
                    break;
                case Reshape r:
                    throw new HwGenException($"node '{r.Name}': reshape {ShapeUtil.Format(r.Input.Type.Shape)} -> {ShapeUtil.Format(r.NewShape)} moves data between rows, which needs a layout engine HwGen does not have yet");
                default:
                    throw new HwGenException($"node '{op.Name}': no hardware engine implements {op.Mnemonic} yet");
            }
        }
    }

    /// <summary>Activation rows: every dimension but the last (the features) flattened.</summary>
    public static int Rows(IReadOnlyList<int> shape) => shape.Count <= 1 ? 1 : ShapeUtil.Size(shape.Take(shape.Count - 1).ToArray());
}
