using System.Runtime.InteropServices;
using HwGen.Core;
using HwGen.Onnx.Proto;
using AT = HwGen.Onnx.Proto.AttributeProto.Types.AttributeType;
using DT = HwGen.Onnx.Proto.TensorProto.Types.DataType;

namespace HwGen.Onnx;

/// <summary>
/// Checks a model on load, before anything is converted or allocated, by the ONNX checker's rules for what HwGen reads:
/// opsets per domain (an op must exist at its domain's opset), values assigned once and used after they are defined,
/// graph inputs and outputs, input and output counts and attribute types of the ops HwGen knows (QONNX's quantizers by
/// QONNX's op definitions), element types and shapes of scales, zero points and bit widths, tensor dims and sizes against
/// <see cref="Limits"/>, tensor data that matches its shape, and no NaN or Inf in the floats a model gives as data
/// (initializers, and Constant nodes in every form: value, value_float, value_floats, sparse_value). Every finding is a
/// <see cref="HwGenException"/> naming the file and the node.
/// </summary>
public static class OnnxValidator
{
    /// <summary>The newest default-domain opset the op table below was written against.</summary>
    public const long MaxOpset = 23;

    /// <summary>An op: the opset it came in (default domain), its input and output counts, and its attributes' types; the
    /// inputs below <paramref name="MinInputs"/> are required (not empty). <paramref name="InputNames"/> names the inputs in
    /// messages where the op has no optional ones.</summary>
    sealed record Schema(int Since, int MinInputs, int MaxInputs, IReadOnlyDictionary<string, AT> Attributes, int MaxOutputs = 1,
        IReadOnlyList<string>? InputNames = null);

    /// <summary>No upper bound on an input or output count (Concat's inputs, Split's outputs).</summary>
    const int Unbounded = int.MaxValue;

    static Dictionary<string, AT> Attrs(params (string Name, AT Type)[] a) => a.ToDictionary(p => p.Name, p => p.Type);

    static readonly Dictionary<string, AT> ConvAttrs = Attrs(("auto_pad", AT.String), ("dilations", AT.Ints), ("group", AT.Int),
        ("kernel_shape", AT.Ints), ("pads", AT.Ints), ("strides", AT.Ints));
    static readonly Dictionary<string, AT> Legacy = Attrs(("consumed_inputs", AT.Ints));
    static readonly Dictionary<string, AT> LegacyBroadcast = Attrs(("axis", AT.Int), ("broadcast", AT.Int), ("consumed_inputs", AT.Ints));

    /// <summary>The ops HwGen reads, as the ONNX operator documents define them up to <see cref="MaxOpset"/>; null for others
    /// (the importer reports those as unsupported).</summary>
    static Schema? SchemaOf(string op, long opset) => op switch
    {
        "Constant" => new(1, 0, 0, Attrs(("value", AT.Tensor), ("sparse_value", AT.SparseTensor), ("value_float", AT.Float), ("value_floats", AT.Floats),
            ("value_int", AT.Int), ("value_ints", AT.Ints), ("value_string", AT.String), ("value_strings", AT.Strings))),
        "ConstantOfShape" => new(9, 1, 1, Attrs(("value", AT.Tensor))),
        "Identity" => new(1, 1, 1, Attrs()),
        "Cast" => new(1, 1, 1, Attrs(("to", AT.Int), ("saturate", AT.Int), ("round_mode", AT.String))),
        "QuantizeLinear" => new(10, 2, 3, Attrs(("axis", AT.Int), ("saturate", AT.Int), ("block_size", AT.Int), ("output_dtype", AT.Int), ("precision", AT.Int))),
        "DequantizeLinear" => new(10, 2, 3, Attrs(("axis", AT.Int), ("block_size", AT.Int), ("output_dtype", AT.Int))),
        "QLinearMatMul" => new(10, 8, 8, Attrs()),
        "MatMulInteger" => new(10, 2, 4, Attrs()),
        "MatMul" => new(1, 2, 2, Attrs()),
        "Gemm" => new(1, opset < 11 ? 3 : 2, 3, Attrs(("alpha", AT.Float), ("beta", AT.Float), ("transA", AT.Int), ("transB", AT.Int), ("broadcast", AT.Int))),
        "Conv" => new(1, 2, 3, ConvAttrs),
        "QLinearConv" => new(10, 8, 9, ConvAttrs),
        "Add" or "Sub" or "Mul" or "Div" or "Pow" => new(1, 2, 2, LegacyBroadcast),
        "Relu" or "Sigmoid" or "Tanh" or "Sqrt" or "Exp" => new(1, 1, 1, Legacy),
        "Erf" => new(9, 1, 1, Attrs()),
        "Gelu" => new(20, 1, 1, Attrs(("approximate", AT.String))),
        "Clip" => opset < 11 ? new(1, 1, 1, Attrs(("min", AT.Float), ("max", AT.Float), ("consumed_inputs", AT.Ints))) : new(1, 1, 3, Attrs()),
        "Reshape" => opset < 5 ? new(1, 1, 1, Attrs(("shape", AT.Ints), ("consumed_inputs", AT.Ints))) : new(1, 2, 2, Attrs(("allowzero", AT.Int))),
        "Flatten" => new(1, 1, 1, Attrs(("axis", AT.Int))),
        "Transpose" => new(1, 1, 1, Attrs(("perm", AT.Ints))),
        "ReduceMean" => opset < 18 ? new(1, 1, 1, Attrs(("axes", AT.Ints), ("keepdims", AT.Int)))
            : new(1, 1, 2, Attrs(("keepdims", AT.Int), ("noop_with_empty_axes", AT.Int))),
        "Softmax" => new(1, 1, 1, Attrs(("axis", AT.Int))),
        "LayerNormalization" => new(17, 2, 3, Attrs(("axis", AT.Int), ("epsilon", AT.Float), ("stash_type", AT.Int)), MaxOutputs: 3),
        // The shape arithmetic torch writes around attention (folded while importing, evaluated by the ONNX semantics).
        "Shape" => new(1, 1, 1, opset < 15 ? Attrs() : Attrs(("start", AT.Int), ("end", AT.Int))),
        "Gather" => new(1, 2, 2, Attrs(("axis", AT.Int))),
        "Slice" => opset < 10 ? new(1, 1, 1, Attrs(("axes", AT.Ints), ("ends", AT.Ints), ("starts", AT.Ints))) : new(1, 3, 5, Attrs()),
        "Concat" => new(1, 1, Unbounded, Attrs(("axis", AT.Int))),
        "Split" => opset switch
        {
            < 2 => new(1, 1, 2, Attrs(("axis", AT.Int), ("split", AT.Ints)), MaxOutputs: Unbounded),
            < 13 => new(1, 1, 1, Attrs(("axis", AT.Int), ("split", AT.Ints)), MaxOutputs: Unbounded),
            < 18 => new(1, 1, 2, Attrs(("axis", AT.Int)), MaxOutputs: Unbounded),
            _ => new(1, 1, 2, Attrs(("axis", AT.Int), ("num_outputs", AT.Int)), MaxOutputs: Unbounded),
        },
        "Unsqueeze" => opset < 13 ? new(1, 1, 1, Attrs(("axes", AT.Ints))) : new(1, 2, 2, Attrs()),
        "Squeeze" => opset < 13 ? new(1, 1, 1, Attrs(("axes", AT.Ints))) : new(1, 1, 2, Attrs()),
        "Expand" => new(8, 2, 2, Attrs()),
        "Equal" => new(1, 2, 2, opset < 7 ? Attrs(("axis", AT.Int), ("broadcast", AT.Int)) : Attrs()),
        "Where" => new(9, 3, 3, Attrs()),
        _ => null,
    };

    /// <summary>QONNX's quantizers as QONNX defines them (docs/qonnx-custom-ops: IntQuant, formerly Quant, and BipolarQuant;
    /// one version, so no opset): every input required, one output; null for QONNX's other ops (the importer reports them
    /// as unsupported).</summary>
    static Schema? QonnxSchemaOf(string op) => op switch
    {
        "Quant" or "IntQuant" => new(0, 4, 4, Attrs(("signed", AT.Int), ("narrow", AT.Int), ("rounding_mode", AT.String)),
            InputNames: ["x", "scale", "zeropt", "bitwidth"]),
        "BipolarQuant" => new(0, 2, 2, Attrs(), InputNames: ["x", "scale"]),
        _ => null,
    };

    /// <summary>ONNX Runtime's contrib QOperator ops HwGen reads, as its ContribOperators.md defines them (one version).</summary>
    static Schema? ContribSchemaOf(string op) => op switch
    {
        "QGemm" => new(0, 6, 9, Attrs(("alpha", AT.Float), ("transA", AT.Int), ("transB", AT.Int)),
            InputNames: ["A", "a_scale", "a_zero_point", "B", "b_scale", "b_zero_point", "C", "y_scale", "y_zero_point"]),
        "QLinearAdd" => new(0, 7, 8, Attrs(), InputNames: ["A", "A_scale", "A_zero_point", "B", "B_scale", "B_zero_point", "C_scale", "C_zero_point"]),
        _ => null,
    };

    /// <summary>What a model's float data must be, completing "... holds NaN or Inf ...; ".</summary>
    const string FiniteRule = "weights, biases, scales, zero points and attention masks must be finite (a mask's masked positions hold a large negative number such as -10^4, not -Inf)";

    /// <summary>A domain as opset_import names it: "ai.onnx" is the default domain "".</summary>
    public static string Domain(string d) => d == "ai.onnx" ? "" : d;

    /// <summary>The domain a node's op is read in: ONNX Runtime's contrib QuantizeLinear and DequantizeLinear (domain com.microsoft,
    /// which its quantizer writes with UseQDQContribOps, or for 16-bit and 4-bit types before opset 21) are the standard ops.</summary>
    public static string Domain(NodeProto n) => Domain(n.Domain) == ContribDomain && n.OpType is "QuantizeLinear" or "DequantizeLinear" ? "" : Domain(n.Domain);

    /// <summary>ONNX Runtime's contrib operator domain.</summary>
    public const string ContribDomain = "com.microsoft";

    /// <summary>How messages name a domain.</summary>
    public static string DomainName(string d) => Domain(d) == "" ? "the default domain" : $"domain {d}";

    public static void Validate(ModelProto model, string path)
    {
        var opsets = Opsets(model, path);
        var g = model.Graph;
        var nodeNames = OnnxLoader.NodeNames(g);
        HwGenException Bad(string reason, int node = -1) => HwGenException.At(path, node < 0 ? null : nodeNames[node], reason);

        // Values: assigned once (initializers, graph inputs, node outputs), used after their definition.
        var defined = new HashSet<string>();
        var consts = new Dictionary<string, TensorProto>();
        foreach (var t in g.Initializer)
        {
            if (t.Name.Length == 0) throw Bad("an initializer has no name");
            if (!defined.Add(t.Name)) throw Bad($"initializer '{t.Name}' is defined twice");
            CheckTensor(t, path, null, finite: true);
            consts[t.Name] = t;
        }
        var inputs = new HashSet<string>();
        foreach (var v in g.Input)
        {
            if (!inputs.Add(v.Name)) throw Bad($"graph input '{v.Name}' is listed twice");
            CheckValueInfo(v, "graph input", path);
            defined.Add(v.Name);
        }
        for (int i = 0; i < g.Node.Count; i++)
        {
            var n = g.Node[i];
            CheckNode(n, opsets, path, nodeNames[i]);
            foreach (var x in n.Input.Where(x => x.Length > 0))
                if (!defined.Contains(x)) throw Bad($"input '{x}' is not produced by an earlier node, an initializer or a graph input", i);
            foreach (var y in n.Output.Where(y => y.Length > 0))
                if (!defined.Add(y)) throw Bad($"output '{y}' is already defined (by an earlier node, an initializer or a graph input); ONNX assigns each value once", i);
            if (n.OpType == "Constant" && Domain(n.Domain) == "" && ConstantTensor(n) is { } t) consts[n.Output[0]] = t;
        }
        if (g.Output.Count == 0) throw Bad("the graph has no outputs");
        var outputs = new HashSet<string>();
        foreach (var v in g.Output)
        {
            if (!outputs.Add(v.Name)) throw Bad($"graph output '{v.Name}' is listed twice");
            if (!defined.Contains(v.Name)) throw Bad($"graph output '{v.Name}' is never computed");
            CheckValueInfo(v, "graph output", path);
        }
        for (int i = 0; i < g.Node.Count; i++)
        {
            var domain = Domain(g.Node[i]);
            if (domain == "") CheckQuantParams(g.Node[i], consts, path, nodeNames[i]);
            else if (QonnxQuant.Domains.Contains(domain)) CheckQonnxParams(g.Node[i], consts, path, nodeNames[i]);
        }
    }

    /// <summary>The opset of each imported domain; at least one, each domain once, versions in range.</summary>
    static Dictionary<string, long> Opsets(ModelProto model, string path)
    {
        if (model.OpsetImport.Count == 0) throw HwGenException.At(path, null, "the model imports no opset (opset_import is empty)");
        var opsets = new Dictionary<string, long>();
        foreach (var o in model.OpsetImport)
        {
            var d = Domain(o.Domain);
            if (!opsets.TryAdd(d, o.Version)) throw HwGenException.At(path, null, $"opset_import lists {DomainName(d)} twice");
            if (o.Version < 1) throw HwGenException.At(path, null, $"opset_import gives {DomainName(d)} version {o.Version}; versions start at 1");
            if (d == "" && o.Version > MaxOpset)
                throw HwGenException.At(path, null, $"opset {o.Version} of the default domain is newer than HwGen knows (at most {MaxOpset})");
        }
        return opsets;
    }

    static void CheckNode(NodeProto n, Dictionary<string, long> opsets, string path, string name)
    {
        HwGenException Bad(string reason) => HwGenException.At(path, name, reason);
        if (n.OpType.Length == 0) throw Bad("node has no op_type");
        var domain = Domain(n);
        // QONNX's ops have one version, and exporters (older FINN, Brevitas) often leave their domain out of opset_import.
        if (!opsets.TryGetValue(domain, out var opset) && !QonnxQuant.Domains.Contains(domain))
            throw Bad($"{n.OpType} is in {DomainName(domain)}, which the model's opset_import does not list");
        var seen = new HashSet<string>();
        foreach (var a in n.Attribute)
        {
            if (a.Name.Length == 0) throw Bad($"{n.OpType} has an attribute without a name");
            if (!seen.Add(a.Name)) throw Bad($"{n.OpType} has attribute '{a.Name}' twice");
            if (a.Type == AT.Undefined) throw Bad($"attribute '{a.Name}' has no type");
            if (a.Type == AT.Tensor)
                CheckTensor(a.T ?? throw Bad($"tensor attribute '{a.Name}' holds no tensor"), path, name, finite: true,
                    a.T.Name.Length > 0 ? null : $"the tensor of attribute '{a.Name}'");
            if (a.Type == AT.SparseTensor && a.SparseTensor?.Values is { } values)
                CheckTensor(values, path, name, finite: true, $"the value tensor of attribute '{a.Name}'");
        }
        if (n.Output.Count == 0) throw Bad($"{n.OpType} has no outputs");
        bool qonnx = QonnxQuant.Domains.Contains(domain);
        if ((domain == "" ? SchemaOf(n.OpType, opset) : qonnx ? QonnxSchemaOf(n.OpType) : domain == ContribDomain ? ContribSchemaOf(n.OpType) : null) is not { } s) return;
        if (domain == "" && opset < s.Since) throw Bad($"{n.OpType} does not exist at opset {opset} of the default domain (it came in opset {s.Since})");
        string version = qonnx ? $"in {DomainName(domain)}" : $"at opset {opset}";
        if (n.Input.Count < s.MinInputs || n.Input.Count > s.MaxInputs)
            throw Bad($"{n.OpType} takes {Count(s.MinInputs, s.MaxInputs, "input")}{Listed(s.InputNames)} {version}, got {n.Input.Count}");
        for (int i = 0; i < s.MinInputs; i++)
            if (n.Input[i].Length == 0)
                throw Bad($"input {i}{(s.InputNames is { } names ? $" ({names[i]})" : "")} of {n.OpType} is empty, but {n.OpType} requires it");
        if (n.Output.Count > s.MaxOutputs) throw Bad($"{n.OpType} has at most {Count(1, s.MaxOutputs, "output")}, got {n.Output.Count}");
        if (n.Output[0].Length == 0) throw Bad($"output 0 of {n.OpType} is empty, but {n.OpType} requires it");
        foreach (var a in n.Attribute)
        {
            if (!s.Attributes.TryGetValue(a.Name, out var want)) throw Bad($"{n.OpType} has no attribute '{a.Name}'");
            if (a.Type != want) throw Bad($"attribute '{a.Name}' of {n.OpType} must be {want.ToString().ToUpperInvariant()}, got {a.Type.ToString().ToUpperInvariant()}");
        }
        if (n.OpType == "Constant" && n.Attribute.Count != 1) throw Bad($"Constant needs exactly one value attribute, got {n.Attribute.Count}");
        if (n.OpType == "Constant" && FirstNonFinite(n.Attribute[0]) is { } at)
            throw Bad($"Constant {n.Attribute[0].Name} holds NaN or Inf{(at < 0 ? "" : $" at element {at}")}; {FiniteRule}");
    }

    /// <summary>The first NaN or Inf of a value_float (-1) or value_floats attribute (its index); null when finite or not floats.
    /// (A value tensor and a sparse_value's values are checked as tensors.)</summary>
    static long? FirstNonFinite(AttributeProto a) => a.Type switch
    {
        AT.Float => float.IsFinite(a.F) ? null : -1,
        AT.Floats => a.Floats.Select((f, i) => (f, i)).Where(p => !float.IsFinite(p.f)).Select(p => (long?)p.i).FirstOrDefault(),
        _ => null,
    };

    static string Listed(IReadOnlyList<string>? names) => names is null ? "" : $" ({string.Join(", ", names)})";

    static string Count(int min, int max, string what) =>
        min == max ? $"{min} {what}{(min == 1 ? "" : "s")}" : max == Unbounded ? $"at least {min} {what}{(min == 1 ? "" : "s")}" : $"{min} to {max} {what}s";

    /// <summary>The element type and dims of the tensor a (checked) Constant node defines, named by its output, for the type
    /// checks of scales and zero points; no data.</summary>
    static TensorProto? ConstantTensor(NodeProto n)
    {
        var a = n.Attribute[0];
        TensorProto Of(DT type, int count)
        {
            var t = new TensorProto { Name = n.Output[0], DataType = (int)type };
            if (count >= 0) t.Dims.Add(count);
            return t;
        }
        return a.Name switch
        {
            "value" => new TensorProto { Name = n.Output[0], DataType = a.T.DataType, Dims = { a.T.Dims } },
            "value_float" => Of(DT.Float, -1),
            "value_int" => Of(DT.Int64, -1),
            "value_floats" => Of(DT.Float, a.Floats.Count),
            "value_ints" => Of(DT.Int64, a.Ints.Count),
            _ => null,
        };
    }

    /// <summary>A graph input or output: a tensor type (ONNX's checker requires one, with its element type and shape, for the
    /// main graph's inputs and outputs), a supported element type, dims within int32 and a size within <see cref="Limits"/>.</summary>
    static void CheckValueInfo(ValueInfoProto v, string what, string path)
    {
        var tt = v.Type?.TensorType;
        if (tt is null || tt.Shape is null)
            throw HwGenException.At(path, null, $"{what} '{v.Name}' {(v.Type is null ? "has no type" : tt is null ? "is not a tensor" : "has no shape")}; " +
                                                "a model's inputs and outputs need a tensor type with an element type and a shape");
        OnnxLoader.ToDType(tt.ElemType, path, v.Name);
        var dims = tt.Shape?.Dim.Select(d => d.HasDimValue ? d.DimValue : 1).ToList() ?? [];
        if (Limits.ShapeProblem(dims) is { } why) throw HwGenException.At(path, null, $"{what} '{v.Name}': {why}");
    }

    /// <summary>
    /// A tensor HwGen can read: stored in the file, a supported element type, dims and size within <see cref="Limits"/>,
    /// as many values as its shape needs, integers within their type and, when <paramref name="finite"/>, no NaN or Inf.
    /// Reads the protobuf only: nothing is allocated for the tensor.
    /// </summary>
    public static void CheckTensor(TensorProto t, string path, string? node, bool finite, string? what = null)
    {
        what ??= $"tensor '{t.Name}'";
        HwGenException Bad(string reason) => HwGenException.At(path, node, $"{what} {reason}");
        if (t.DataLocation == TensorProto.Types.DataLocation.External) throw Bad("uses external data, which HwGen does not read");
        var type = OnnxLoader.TryDType(t.DataType) ?? throw Bad(OnnxLoader.Unsupported(t.DataType));
        if (Limits.ShapeProblem(t.Dims) is { } why) throw Bad($"has an invalid shape: {why}");
        long n = Size(t);
        int w = type.Bits() / 8;
        if (!t.RawData.IsEmpty)
        {
            if (t.RawData.Length != n * w) throw Bad($"has {t.RawData.Length} raw bytes, expected {n * w}");
        }
        else
        {
            int count = type switch
            {
                DType.Float32 => t.FloatData.Count, DType.Float64 => t.DoubleData.Count, DType.Int64 => t.Int64Data.Count,
                DType.UInt32 => t.Uint64Data.Count, _ => t.Int32Data.Count,
            };
            if (count != n) throw Bad($"holds {count} values, its shape needs {n}");
            var (lo, hi) = type.Range();
            long? bad = type switch
            {
                DType.Int64 or DType.Float32 or DType.Float64 => null,
                DType.UInt32 => t.Uint64Data.Where(v => v > (ulong)hi).Select(v => (long?)(long)Math.Min(v, long.MaxValue)).FirstOrDefault(),
                _ => t.Int32Data.Where(v => v < lo || v > hi).Select(v => (long?)v).FirstOrDefault(),
            };
            if (bad is { } b) throw Bad($"holds {b}, out of range for {type.Name()}");
        }
        if (finite && FirstNonFinite(t, type) is { } i) throw Bad($"holds NaN or Inf at element {i}; {FiniteRule}");
    }

    static long? FirstNonFinite(TensorProto t, DType type)
    {
        static long? First<T>(ReadOnlySpan<T> s, Func<T, bool> finite)
        {
            for (int i = 0; i < s.Length; i++) if (!finite(s[i])) return i;
            return null;
        }
        var raw = t.RawData.Span;
        return type switch
        {
            DType.Float32 when !raw.IsEmpty => First(MemoryMarshal.Cast<byte, float>(raw), float.IsFinite),
            DType.Float64 when !raw.IsEmpty => First(MemoryMarshal.Cast<byte, double>(raw), double.IsFinite),
            DType.Float32 => First<float>(t.FloatData.ToArray(), float.IsFinite),
            DType.Float64 => First<double>(t.DoubleData.ToArray(), double.IsFinite),
            _ => null,
        };
    }

    /// <summary>Scales and zero points of the quantizing ops, where they are constants: float32 scales, int8/uint8 zero points
    /// (int32 for a DequantizeLinear of int32), a zero point of its input's type and its scale's shape, per-axis parameters
    /// as long as the axis.</summary>
    static void CheckQuantParams(NodeProto n, Dictionary<string, TensorProto> consts, string path, string name)
    {
        TensorProto? C(int i) => i < n.Input.Count && consts.TryGetValue(n.Input[i], out var t) ? t : null;
        long axis = n.Attribute.FirstOrDefault(a => a.Name == "axis")?.I ?? 1;
        switch (n.OpType)
        {
            case "QuantizeLinear": Pair(1, 2, null, axis, int32: false); break;
            case "DequantizeLinear": Pair(1, 2, 0, axis, int32: true); break;
            case "QLinearMatMul" or "QLinearConv":
                Pair(1, 2, 0, -1, int32: false); Pair(4, 5, 3, n.OpType == "QLinearConv" ? 0 : -1, int32: false); Pair(6, 7, null, -1, int32: false);
                break;
            case "MatMulInteger": ZeroPoint(2, 0, int32: false); ZeroPoint(3, 1, int32: false); break;
        }

        void Pair(int scale, int zp, int? x, long ax, bool int32)
        {
            if (C(scale) is { } s)
            {
                if (s.DataType != (int)DT.Float)
                    throw HwGenException.At(path, name, $"scale '{s.Name}' of {n.OpType} is {OnnxLoader.ToDType(s.DataType, path, s.Name).Name()}; HwGen reads float32 scales");
                if (n.Attribute.FirstOrDefault(a => a.Name == "block_size") is { I: not 0 } block)
                    throw HwGenException.At(path, name, $"{n.OpType} has block_size {block.I} (blocked quantization, a scale per block of {block.I} along axis {axis}); HwGen reads per-tensor or per-axis (1-D) scales");
                if (s.Dims.Count > 1) throw HwGenException.At(path, name, $"scale '{s.Name}' has rank {s.Dims.Count}; HwGen reads per-tensor or per-axis (1-D) scales");
                if (x is { } xi && C(xi) is { } xt && Size(s) > 1 && ax >= 0)
                {
                    long a = ax < 0 ? ax + xt.Dims.Count : ax;
                    if (a < 0 || a >= xt.Dims.Count || xt.Dims[(int)a] != Size(s))
                        throw HwGenException.At(path, name, $"scale '{s.Name}' has {Size(s)} values for axis {ax} of '{xt.Name}' [{string.Join("x", xt.Dims)}]");
                }
                if (C(zp) is { } z && !z.Dims.SequenceEqual(s.Dims))
                    throw HwGenException.At(path, name, $"zero point '{z.Name}' has shape [{string.Join("x", z.Dims)}], its scale '{s.Name}' [{string.Join("x", s.Dims)}]; ONNX needs the same shape");
            }
            ZeroPoint(zp, x, int32);
        }

        void ZeroPoint(int zp, int? x, bool int32)
        {
            if (C(zp) is not { } z) return;
            var zt = (DT)z.DataType;
            if (zt is not (DT.Int8 or DT.Uint8) && !(int32 && zt == DT.Int32))
                throw HwGenException.At(path, name, $"zero point '{z.Name}' of {n.OpType} is {OnnxLoader.ToDType(z.DataType, path, z.Name).Name()}; HwGen reads int8 or uint8{(int32 ? " (int32 for int32 inputs)" : "")} zero points" +
                    (zt is DT.Int16 or DT.Uint16 ? " (16-bit activations, as ONNX Runtime's A16W8 quantization writes them, do not fit the 8-bit datapath)" : ""));
            if (x is { } xi && C(xi) is { } xt && xt.DataType != z.DataType)
                throw HwGenException.At(path, name, $"zero point '{z.Name}' is {OnnxLoader.ToDType(z.DataType, path, z.Name).Name()} but '{xt.Name}' is {OnnxLoader.ToDType(xt.DataType, path, xt.Name).Name()}; ONNX needs the same type");
        }
    }

    /// <summary>The constant scale, zero point and bit width of a QONNX quantizer, by QONNX's op definitions: float32 scales and
    /// zero points, a float32 or int32 bit width (int64 too: QONNX's own examples write one). Values (bit widths 2 to 8,
    /// positive scales) are the importer's to check; inputs that are not constants it refuses there.</summary>
    static void CheckQonnxParams(NodeProto n, Dictionary<string, TensorProto> consts, string path, string name)
    {
        if (QonnxSchemaOf(n.OpType)?.InputNames is not { } inputs) return;
        for (int i = 1; i < inputs.Count; i++)
        {
            if (!consts.TryGetValue(n.Input[i], out var t)) continue;
            bool bitwidth = inputs[i] == "bitwidth";
            var (what, allowed) = bitwidth ? ("bit width", "float32 or int32 bit widths (HwGen also reads int64)")
                : inputs[i] == "scale" ? ("scale", "float32 scales") : ("zero point", "float32 zero points");
            if (t.DataType == (int)DT.Float || (bitwidth && t.DataType is (int)DT.Int32 or (int)DT.Int64)) continue;
            throw HwGenException.At(path, name, $"{what} '{t.Name}' (input {i}, {inputs[i]}) of {n.OpType} is {OnnxLoader.ToDType(t.DataType, path, t.Name).Name()}; QONNX's {n.OpType} takes {allowed}");
        }
    }

    static long Size(TensorProto t) => t.Dims.Aggregate(1L, (a, d) => a * d);
}
