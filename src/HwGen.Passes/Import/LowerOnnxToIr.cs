using System.Text;
using HwGen.Core;
using HwGen.Core.Ir;
using HwGen.Onnx;
using HwGen.Reference;

namespace HwGen.Passes.Import;

/// <summary>
/// Lowers an ONNX model in QDQ or QOperator form to HwGen's integer IR by abstract interpretation: each ONNX
/// tensor becomes a constant, a quantized IR value, a float view of one (after DequantizeLinear), or a
/// pending float computation that a later QuantizeLinear turns into an integer op. This is where Q/DQ pairs
/// fold away. Unsigned 8-bit activations are shifted to int8 (q - 128, zero point - 128), which changes no
/// real value. One partial file per op family.
/// </summary>
public sealed partial class LowerOnnxToIr
{
    abstract record Abs;
    /// <summary>A compile-time constant (folded with ONNX semantics). <paramref name="NonFinite"/>, when set, says which fold
    /// made the NaN or Inf this constant holds or is computed from (<see cref="FoldedNonFinite"/>); only further folds may
    /// take such a constant (<see cref="RefuseNonFinite"/>).</summary>
    sealed record Const(Tensor T, string? NonFinite = null) : Abs;
    /// <summary>DequantizeLinear of a constant integer tensor (weights, biases): keeps the integers. Its reals are computed
    /// when asked (<see cref="Real"/>): a weight matrix is only ever used as integers, and its reals as doubles would be the
    /// largest thing the import holds (8 bytes a parameter).</summary>
    sealed record QConst(Tensor Q, Tensor Scale, Tensor? Zp, int Axis, Func<Tensor> MakeReal) : Abs
    {
        Tensor? real;
        /// <summary>The dequantized values (computed once, on first use).</summary>
        public Tensor Real => real ??= MakeReal();

        /// <summary>The bit width of a QONNX quantizer's codes (1 for BipolarQuant); 0 when not from QONNX.</summary>
        public int QonnxBits { get; init; }
    }
    /// <summary>A float graph input, before quantization.</summary>
    sealed record FloatInput(Value V) : Abs;
    /// <summary>A quantized IR value; OnnxType is the integer type ONNX gives it (uint8 values are held as int8 - 128).</summary>
    sealed record Quantized(Value V, DType OnnxType) : Abs;
    /// <summary>DequantizeLinear of a quantized value: its real numbers.</summary>
    sealed record RealView(Value V) : Abs;
    /// <summary>ReLU or Clip (real bounds) of a real view, waiting for its QuantizeLinear.</summary>
    sealed record PendingClamp(Value V, double Lo, double Hi, string Node) : Abs;

    readonly OnnxModel model;
    readonly Graph graph;
    readonly Dictionary<string, Abs> env = [];
    readonly HashSet<string> names = [];

    readonly int? batch;

    /// <summary>Weights of a layer after whose lowering the import collects garbage (<see cref="Lower"/>): 2^22, a 2048² layer.</summary>
    const long CollectAfterWeights = 1 << 22;

    LowerOnnxToIr(OnnxModel model, int? batch)
    {
        this.model = model;
        this.batch = batch;
        graph = new Graph(Legal(model.Name));
    }

    /// <summary>Lowers the model; <paramref name="batch"/> replaces the leading dimension of every input (symbolic
    /// dimensions are otherwise compiled as 1).</summary>
    public static Graph Run(OnnxModel model, int? batch = null) => new LowerOnnxToIr(model, batch).Lower();

    Graph Lower()
    {
        foreach (var i in model.RuntimeInputs)
        {
            if (i.Type != DType.Float32)
                throw Error(null, $"graph input '{i.Name}' is {i.Type.Name()}; HwGen takes float32 inputs and quantizes them with the model's QuantizeLinear");
            if (i.Shape.Count == 0)
                throw Error(null, $"graph input '{i.Name}' is a scalar (shape []); HwGen takes inputs of rank 1 or more (rows of features)");
            var shape = i.Shape.Select((d, k) => k == 0 && batch is { } b ? b : d <= 0 ? 1 : d).ToArray();
            if (Limits.ShapeProblem(shape) is { } why)
                throw Error(null, $"graph input '{i.Name}'{(batch is { } n ? $" with --batch {n}" : "")}: {why}");
            var v = NewValue(i.Name, new TensorType(DType.Float32, shape));
            graph.Inputs.Add(v);
            env[i.Name] = new FloatInput(v);
        }
        // A value leaves env after the last node that reads it (graph outputs stay): a dequantized weight matrix is held
        // from its DequantizeLinear to its MatMul, not to the end of the import.
        var lastUse = new Dictionary<string, int>();
        for (int i = 0; i < model.Nodes.Count; i++) foreach (var n in model.Nodes[i].Inputs) lastUse[n] = i;
        foreach (var o in model.Outputs) lastUse.Remove(o.Name);
        var releaseAfter = lastUse.ToLookup(kv => kv.Value, kv => kv.Key);
        for (int i = 0; i < model.Nodes.Count; i++)
        {
            LowerNode(model.Nodes[i]);
            bool bigWeightsGone = false;
            foreach (var n in releaseAfter[i])
                if (env.Remove(n, out var gone) && gone is QConst { Q.Size: >= CollectAfterWeights }) bigWeightsGone = true;
            // A big layer's weights as doubles (8 B each, and its int8 codes) are garbage once its product is lowered; left to the
            // GC's own pace they piled up over the layers to 3-4 times what the import holds (1B ternary: a 4.9 GB peak).
            if (bigWeightsGone) GC.Collect();
        }
        DropSplitProducers();
        foreach (var o in model.Outputs)
        {
            var a = Lookup(o.Name) ?? throw Error(null, $"graph output '{o.Name}' is never computed");
            graph.Outputs.Add(a switch
            {
                RealView rv => Emit(new Dequantize(Legal("dequantize_" + o.Name), rv.V, NewValue(o.Name, new TensorType(DType.Float32, rv.V.Type.Shape)))),
                QuantizedFunction qf => throw qf.Why,
                RealFunction { Approximate: true } rf => throw rf.Unresolved ?? NotAUnit(model.Nodes.Last(n => n.Outputs.Contains(o.Name)), rf),
                Quantized or LayoutView { OnnxType: not null } or MaskedScores { OnnxType: not null } =>
                    throw Error(null, $"graph output '{o.Name}' is an integer tensor; end the graph with DequantizeLinear so HwGen can return real values"),
                LayoutView lv => throw Error(null, $"graph output '{o.Name}' is an activation in a changed layout ({Describe(lv)}, {ShapeUtil.Format(lv.Shape)}): " +
                    "HwGen moves no data for attention's Reshape and Transpose; give the output in the stored layout (merge the heads back)"),
                Framed { F: SeqFrame sf } => throw Error(null, $"graph output '{o.Name}' is in {SeqDescription(sf)}: HwGen stores activations batch-first " +
                    "and moves no data for torch's Transpose; give the output batch-first (the Transpose [1, 0, 2] back)"),
                MaskedScores ms => throw Error(null, $"graph output '{o.Name}' is the scores masked by the Add '{ms.Node}' (a constant of 0 and values at " +
                    "most -10^4 is an attention mask): only a Softmax may take masked scores"),
                _ => throw Error(null, $"graph output '{o.Name}' is not computed from quantized tensors (it needs QuantizeLinear/DequantizeLinear around the ops that produce it)"),
            });
        }
        if (!graph.Ops.Any(o => o is QGemm or QNonlinear or QAdd or QMatMul))
            throw Error(null, "the model has no quantized op for the hardware (QDQ Gemm/MatMul, QLinearMatMul, a nonlinear op or an Add of activations between DequantizeLinear and QuantizeLinear)");
        return graph;
    }

    /// <summary>What a name stands for: a value lowered so far, or an initializer, converted from the model's stored bytes
    /// when asked (<see cref="OnnxModel.Initializers"/>), not held for the whole import.</summary>
    Abs? Lookup(string name) => env.GetValueOrDefault(name) ?? (model.Initializers.TryGetValue(name, out var t) ? new Const(t) : null);

    void LowerNode(OnnxNode node)
    {
        bool qonnx = QonnxQuant.Is(node);
        bool contrib = OnnxValidator.Domain(node.Domain) == OnnxValidator.ContribDomain && OnnxEvaluator.ContribOps.Contains(node.OpType);
        if (!qonnx && !contrib && (node.Domain is not ("" or "ai.onnx") || !OnnxEvaluator.SupportedOps.Contains(node.OpType)))
            throw Error(node, $"unsupported op {(node.Domain is "" ? "" : node.Domain + ".")}{node.OpType} ({OpsetName(node)}){UnsupportedWhy(node)}");
        var ins = node.Inputs.Select(n => n.Length == 0 ? null : Lookup(n)
            ?? throw Error(node, $"input '{n}' is not produced by any earlier node, initializer or graph input")).ToArray();

        // The shape of an activation is known (static input shapes): torch's shape arithmetic then folds as constants.
        if (node.OpType == "Shape" && ins[0] is not (null or Const))
        {
            env[node.Outputs[0]] = new Const(OnnxEvaluator.ShapeOf(OnnxShape(node, ins[0]!), node.Attributes.ContainsKey("start") ? node.Int("start", 0) : null,
                node.Attributes.ContainsKey("end") ? node.Int("end", 0) : null));
            return;
        }
        // Constant subgraphs fold with ONNX semantics; a DequantizeLinear or QONNX quantizer of constants keeps the integers.
        if (ins.All(a => a is null or Const) && node.OpType != "DequantizeLinear" && !qonnx)
        {
            var outs = OnnxEvaluator.Evaluate(node, ins.Select(a => (a as Const)?.T).ToArray(), model.Path, model.Opset);
            for (int k = 0; k < outs.Length && k < node.Outputs.Count; k++)
                env[node.Outputs[k]] = new Const(outs[k], FoldedNonFinite(node, ins, node.Outputs[k], outs[k]));
            return;
        }
        RefuseNonFinite(node, ins);
        if (node.OpType == "Split")
        {
            LowerSplit(node, ins);
            return;
        }
        env[node.Outputs[0]] = LowerFramed(node, ins) ?? LowerOp(node, ins);
    }

    /// <summary>Why an op that exporters write is not taken, completing "unsupported op X (opset n)"; empty for others.</summary>
    static string UnsupportedWhy(OnnxNode node) => (OnnxValidator.Domain(node.Domain), node.OpType) switch
    {
        ("", "DynamicQuantizeLinear") => ": quantize_dynamic computes each input's scale and zero point at run time, and the hardware " +
            "needs them fixed when it is compiled; quantize statically (ONNX Runtime's quantize_static, QDQ or QOperator format)",
        ("", "ConvInteger") => ": convolutions are not in the hardware yet (they need an im2col layout engine)",
        (OnnxValidator.ContribDomain, _) => $": of ONNX Runtime's contrib ops (com.microsoft) HwGen takes QuantizeLinear, DequantizeLinear, " +
            $"{string.Join(" and ", OnnxEvaluator.ContribOps)}; quantize to the QDQ format (quantize_static's default), whose ops are standard",
        _ => "",
    };

    /// <summary>The lowering of one node whose inputs are no <see cref="Framed"/> values.</summary>
    Abs LowerOp(OnnxNode node, Abs?[] ins)
    {
        bool qonnx = QonnxQuant.Is(node);
        ins = AdmitViews(node, ins);
        if (!(qonnx || node.OpType is "QuantizeLinear" or "Relu" or "Clip" or "Identity")) ins = ins.Select(a => a is PendingClamp pc ? ClampInPlace(node, pc) : a).ToArray();
        if (node.OpType != "DequantizeLinear" && ins.OfType<QuantizedFunction>().FirstOrDefault() is { } qf) throw qf.Why;
        if (LowerNonlinear(node, ins) is { } nonlinear) return nonlinear;
        if (!qonnx && node.OpType != "QuantizeLinear" && ins.OfType<RealFunction>().FirstOrDefault(f => f.Approximate) is { } approximate)
            throw approximate.Unresolved ?? NotAUnit(node, approximate);
        return qonnx ? LowerQonnx(node, ins) : node.OpType switch
        {
            "QuantizeLinear" => LowerQuantize(node, ins),
            "DequantizeLinear" => LowerDequantize(node, ins),
            "Identity" => ins[0]!,
            "Cast" => LowerCast(node, ins),
            "Gemm" or "MatMul" => LowerMatMul(node, ins),
            "Add" or "Sub" => LowerAdd(node, ins),
            "Relu" or "Clip" => LowerActivation(node, ins),
            "Reshape" or "Flatten" => LowerReshape(node, ins),
            "QLinearMatMul" => LowerQLinearMatMul(node, ins),
            "MatMulInteger" => LowerMatMulInteger(node, ins),
            "Mul" or "Div" => LowerMul(node, ins),
            "Transpose" => LowerTranspose(node, ins),
            "Slice" => LowerSlice(node, ins),
            "Gather" => LowerGather(node, ins),
            "Concat" => LowerConcat(node, ins),
            "QGemm" => LowerQGemm(node, ins),
            "QLinearAdd" => LowerQLinearAdd(node, ins),
            _ => throw Error(node, $"op {node.OpType} ({OpsetName(node)}) is supported by the golden model but not on quantized tensors in the hardware flow"),
        };
    }

    /// <summary>What the constants the lowerings read (weights, biases, scales, zero points, clamp bounds, and the nonlinear
    /// patterns' scalars and vectors) must be: the validator refuses a NaN or Inf stored in the file, <see cref="RefuseNonFinite"/>
    /// one that a constant subgraph computes.</summary>
    const string FiniteRule = "weights, biases, scales, zero points and clamp bounds must be finite";

    /// <summary>
    /// The source of the NaN or Inf in or behind a folded output, or null. A fold of finite, clean inputs that gives a NaN or
    /// Inf is the source (named with the element and the likely cause); an output of a fold that took such a constant keeps
    /// its source whatever its values: a NaN cast or quantized to integers becomes an arbitrary code (ONNX leaves it
    /// undefined), Inf a saturated one, and an Inf divided into 0 is still no parameter a model meant.
    /// </summary>
    static string? FoldedNonFinite(OnnxNode node, Abs?[] ins, string output, Tensor t)
    {
        if (ins.OfType<Const>().Select(c => c.NonFinite).FirstOrDefault(w => w is not null) is { } inherited) return inherited;
        int i = Array.FindIndex(t.Data, v => !double.IsFinite(v));
        if (i < 0) return null;
        double v = t.Data[i];
        string what = double.IsNaN(v) ? "NaN" : v > 0 ? "+Inf" : "-Inf";
        string? cause = (node.OpType, double.IsNaN(v)) switch
        {
            ("Sqrt", true) => "the square root of a negative number",
            ("Div", true) => "0 / 0",
            ("Div", false) => "a division by zero",
            ("Pow", true) => "a negative number to a fractional power",
            ("Pow", false) => "0 to a negative power, or beyond float32",
            (_, false) => "beyond float32",
            _ => null,
        };
        return $"node '{node.Name}' ({node.OpType} of constants) gives {what} at element {i} of '{output}'{(cause is null ? "" : $" ({cause})")}";
    }

    /// <summary>The one check between constant folding and the lowerings: a node that is not folded (so it reads its constant
    /// inputs as parameters) takes no constant with a NaN or Inf in or behind it. Stored constants the validator checked.</summary>
    void RefuseNonFinite(OnnxNode node, Abs?[] ins)
    {
        for (int i = 0; i < ins.Length; i++)
        {
            if (ins[i] is not Const { NonFinite: { } source } c) continue;
            string state = c.T.Data.All(double.IsFinite) ? "is computed from a NaN or Inf" : "is not finite";
            throw Error(node, $"{node.OpType} input {i} '{node.Inputs[i]}' {state}: {source}; {FiniteRule}");
        }
    }

    /// <summary>The opset of the node's own domain, as messages give it: "opset 13", "opset 1 of domain qonnx.custom_op.general".</summary>
    string OpsetName(OnnxNode node) => model.OpsetOf(node) is var v && OnnxValidator.Domain(node.Domain) == "" ? $"opset {v}"
        : v > 0 ? $"opset {v} of domain {node.Domain}" : $"domain {node.Domain}, which opset_import does not list";

    HwGenException Error(OnnxNode? node, string reason) => HwGenException.At(model.Path, node?.Name, reason);

    Value NewValue(string onnxName, TensorType type) => new(Legal(onnxName), type);

    /// <summary>Characters an identifier keeps of a longer ONNX name; the rest becomes a hash of the whole name, so module and
    /// file names the RTL makes of it stay far below the file system's 255 bytes.</summary>
    const int MaxIdentifier = 96;

    /// <summary>A unique identifier made from an ONNX name: letters, digits and '_' only, at most <see cref="MaxIdentifier"/>
    /// characters and a hash.</summary>
    string Legal(string raw)
    {
        var sb = new StringBuilder();
        foreach (var c in raw.TrimStart('/')) sb.Append(char.IsAsciiLetterOrDigit(c) ? c : '_');
        var s = sb.Length == 0 || char.IsAsciiDigit(sb[0]) ? "v" + sb : sb.ToString();
        if (s.Length > MaxIdentifier)
            s = s[..MaxIdentifier] + "_" + Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes(raw)))[..8];
        var u = s;
        for (int i = 1; !names.Add(u); i++) u = $"{s}_{i}";
        return u;
    }

    Value Emit(Op op)
    {
        graph.Ops.Add(op);
        return op.Output;
    }

    Const ConstIn(OnnxNode node, Abs?[] ins, int i, string what) =>
        ins.ElementAtOrDefault(i) as Const ?? throw Error(node, $"{what} (input {i}) must be a constant");
}
