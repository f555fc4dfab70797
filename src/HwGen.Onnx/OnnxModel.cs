using HwGen.Core;

namespace HwGen.Onnx;

/// <summary>An attribute value of an ONNX node, converted from protobuf.</summary>
public sealed record OnnxAttribute(string Name, long? Int = null, float? Float = null, string? String = null,
    IReadOnlyList<long>? Ints = null, IReadOnlyList<float>? Floats = null, Tensor? Tensor = null);

/// <summary>An ONNX node with its attributes; the importer's view of the protobuf NodeProto.</summary>
public sealed record OnnxNode(string Name, string OpType, string Domain, IReadOnlyList<string> Inputs,
    IReadOnlyList<string> Outputs, IReadOnlyDictionary<string, OnnxAttribute> Attributes)
{
    public long Int(string name, long dflt) => Attributes.TryGetValue(name, out var a) && a.Int is { } v ? v : dflt;
    public float Float(string name, float dflt) => Attributes.TryGetValue(name, out var a) && a.Float is { } v ? v : dflt;
    public IReadOnlyList<long>? Ints(string name) => Attributes.TryGetValue(name, out var a) ? a.Ints : null;
    public string Str(string name, string dflt) => Attributes.TryGetValue(name, out var a) && a.String is { } v ? v : dflt;
    /// <summary>The i-th input name, or null when absent or empty (ONNX optional inputs).</summary>
    public string? Input(int i) => i < Inputs.Count && Inputs[i].Length > 0 ? Inputs[i] : null;
}

/// <summary>A graph input or output: name, element type and shape (dims may be symbolic: -1).</summary>
public sealed record OnnxValueInfo(string Name, DType Type, IReadOnlyList<int> Shape);

/// <summary>
/// A model's initializers by name. A large one is kept as its stored bytes (int8 weights: one byte each) and converted to a
/// <see cref="Tensor"/> (a double each) on every access, so what a reader does not keep is garbage after its use: the
/// importer holds a layer's weights as doubles only while it lowers that layer.
/// </summary>
public sealed class Initializers(IReadOnlyDictionary<string, Func<Tensor>> make) : IReadOnlyDictionary<string, Tensor>
{
    /// <summary>Elements from which an initializer is converted when asked rather than once at load.</summary>
    public const long LazyMinElements = 4096;

    public Tensor this[string key] => make[key]();
    public IEnumerable<string> Keys => make.Keys;
    public IEnumerable<Tensor> Values => make.Values.Select(f => f());
    public int Count => make.Count;
    public bool ContainsKey(string key) => make.ContainsKey(key);
    public bool TryGetValue(string key, [System.Diagnostics.CodeAnalysis.MaybeNullWhen(false)] out Tensor value)
    {
        value = make.TryGetValue(key, out var f) ? f() : null;
        return value is not null;
    }
    public IEnumerator<KeyValuePair<string, Tensor>> GetEnumerator() => make.Select(kv => KeyValuePair.Create(kv.Key, kv.Value())).GetEnumerator();
    System.Collections.IEnumerator System.Collections.IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>A loaded ONNX model: its main graph with initializers as tensors.</summary>
public sealed class OnnxModel
{
    public required string Path { get; init; }
    public required string Name { get; init; }
    /// <summary>The imported opset of each domain ("" is the default domain, also for "ai.onnx").</summary>
    public required IReadOnlyDictionary<string, long> Opsets { get; init; }
    /// <summary>The default domain's opset.</summary>
    public long Opset => OpsetOf("");
    public long OpsetOf(string domain) => Opsets.GetValueOrDefault(OnnxValidator.Domain(domain));
    public long OpsetOf(OnnxNode node) => OpsetOf(node.Domain);
    public required IReadOnlyList<OnnxValueInfo> Inputs { get; init; }
    public required IReadOnlyList<OnnxValueInfo> Outputs { get; init; }
    public required IReadOnlyDictionary<string, Tensor> Initializers { get; init; }
    public required IReadOnlyList<OnnxNode> Nodes { get; init; }

    /// <summary>Graph inputs that are not initializers: what a user feeds.</summary>
    public IEnumerable<OnnxValueInfo> RuntimeInputs => Inputs.Where(i => !Initializers.ContainsKey(i.Name));

    /// <summary>The model's one runtime input bound to <paramref name="x"/>, read from <paramref name="source"/>, as float32:
    /// of its shape, or of its size when the shape is fixed (then reshaped, as the hardware model takes inputs), else one error
    /// naming the file (a model with another number of inputs names the model).</summary>
    public Dictionary<string, Tensor> Feed(Tensor x, string source)
    {
        var inputs = RuntimeInputs.ToList();
        if (inputs.Count != 1) throw HwGenException.At(Path, null, $"the model takes {inputs.Count} inputs; one .npy input feeds one");
        var want = inputs[0];
        bool fixedShape = want.Shape.All(d => d >= 0);
        bool fits = fixedShape
            ? x.Size == want.Shape.Aggregate(1L, (n, d) => n * d)
            : x.Shape.Length == want.Shape.Count && x.Shape.Zip(want.Shape).All(p => p.Second < 0 || p.First == p.Second);
        if (!fits) throw HwGenException.At(source, null, $"input '{want.Name}' needs shape [{string.Join("x", want.Shape.Select(d => d < 0 ? "?" : d.ToString()))}], got {ShapeUtil.Format(x.Shape)}");
        return new() { [want.Name] = (fixedShape ? x.Reshaped([.. want.Shape]) : x).WithType(DType.Float32) };
    }
}
