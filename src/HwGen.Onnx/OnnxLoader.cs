using Google.Protobuf;
using HwGen.Core;
using HwGen.Onnx.Proto;

namespace HwGen.Onnx;

/// <summary>Reads .onnx files (with external data, <see cref="ExternalData"/>) and TensorProto .pb files into HwGen's ONNX model and tensors.</summary>
public static class OnnxLoader
{
    public static OnnxModel Load(string path)
    {
        if (!File.Exists(path)) throw HwGenException.At(path, null, "file not found");
        ModelProto proto;
        try
        {
            using var s = File.OpenRead(path);
            proto = ModelProto.Parser.ParseFrom(s);
        }
        catch (InvalidProtocolBufferException e)
        {
            throw HwGenException.At(path, null, $"not a valid ONNX model (protobuf: {e.Message.TrimEnd('.')}); the file may be truncated or not ONNX");
        }
        if (proto.Graph is null || proto.IrVersion <= 0 || (proto.Graph.Node.Count == 0 && proto.Graph.Output.Count == 0))
            throw HwGenException.At(path, null, "not a valid ONNX model (no graph or IR version); the file may be truncated or not ONNX");
        // Tensors with external data read it from memory-mapped files while the model loads (large initializers read their bytes
        // again from the file when asked: Initializers).
        using var external = ExternalData.Resolve(proto, path);
        return FromProto(proto, path, external.Source);
    }

    /// <summary>Converts a model that <see cref="OnnxValidator.Validate"/> accepts (it runs first). <paramref name="stored"/> says
    /// where a tensor with external data keeps its bytes.</summary>
    public static OnnxModel FromProto(ModelProto proto, string path, Func<TensorProto, ExternalData.StoredBytes?>? stored = null)
    {
        OnnxValidator.Validate(proto, path);
        var g = proto.Graph;
        var opsets = proto.OpsetImport.ToDictionary(o => OnnxValidator.Domain(o.Domain), o => o.Version);
        var inits = new Dictionary<string, Func<Tensor>>();
        foreach (var t in g.Initializer)
        {
            if (t.Dims.Aggregate(1L, (n, d) => n * d) < Initializers.LazyMinElements)
            {
                var small = ToTensor(t, path);
                inits[t.Name] = () => small;
                continue;
            }
            // Converted on each use from its stored bytes: inline data is the protobuf's own (the rest of the model's protobuf is
            // dropped after loading); external data is read again from its file (it is memory-mapped only while loading), so
            // the model holds no copy of it.
            if (stored?.Invoke(t) is { } at)
            {
                var meta = new TensorProto(t) { RawData = ByteString.Empty };
                inits[t.Name] = () => ToTensor(new TensorProto(meta) { RawData = UnsafeByteOperations.UnsafeWrap(at.Read(path, meta.Name)) }, path);
            }
            else inits[t.Name] = () => ToTensor(t, path);
        }
        var names = NodeNames(g);
        var nodes = g.Node.Select((nd, i) => new OnnxNode(names[i], nd.OpType, OnnxValidator.Domain(nd), nd.Input.ToArray(), nd.Output.ToArray(),
            nd.Attribute.ToDictionary(a => a.Name, a => ToAttribute(a, path)))).ToList();
        string name = g.Name.Length > 0 ? g.Name : System.IO.Path.GetFileNameWithoutExtension(path);
        return new OnnxModel
        {
            Path = path, Name = name, Opsets = opsets,
            Inputs = g.Input.Select(v => ToValueInfo(v, path)).ToList(),
            Outputs = g.Output.Select(v => ToValueInfo(v, path)).ToList(),
            Initializers = new Initializers(inits), Nodes = nodes,
        };
    }

    /// <summary>How messages name each node: its name, or its op type and a counter over the nameless nodes.</summary>
    public static string[] NodeNames(GraphProto g)
    {
        int n = 0;
        return g.Node.Select(nd => nd.Name.Length > 0 ? nd.Name : $"{nd.OpType}_{n++}").ToArray();
    }

    /// <summary>Reads a serialized TensorProto (as in the ONNX conformance test data sets).</summary>
    public static Tensor LoadTensor(string path)
    {
        TensorProto t;
        try { t = TensorProto.Parser.ParseFrom(File.ReadAllBytes(path)); }
        catch (InvalidProtocolBufferException e) { throw HwGenException.At(path, null, $"not a TensorProto ({e.Message})"); }
        OnnxValidator.CheckTensor(t, path, null, finite: false);
        return ToTensor(t, path);
    }

    static OnnxValueInfo ToValueInfo(ValueInfoProto v, string path)
    {
        var tt = v.Type?.TensorType;
        if (tt is null) return new OnnxValueInfo(v.Name, DType.Float32, []);
        var shape = tt.Shape?.Dim.Select(d => d.HasDimValue ? (int)d.DimValue : -1).ToArray() ?? [];
        return new OnnxValueInfo(v.Name, ToDType(tt.ElemType, path, v.Name), shape);
    }

    static OnnxAttribute ToAttribute(AttributeProto a, string path) => a.Type switch
    {
        AttributeProto.Types.AttributeType.Int => new(a.Name, Int: a.I),
        AttributeProto.Types.AttributeType.Float => new(a.Name, Float: a.F),
        AttributeProto.Types.AttributeType.String => new(a.Name, String: a.S.ToStringUtf8()),
        AttributeProto.Types.AttributeType.Ints => new(a.Name, Ints: a.Ints.ToArray()),
        AttributeProto.Types.AttributeType.Floats => new(a.Name, Floats: a.Floats.ToArray()),
        AttributeProto.Types.AttributeType.Tensor => new(a.Name, Tensor: ToTensor(a.T, path)),
        _ => new(a.Name),
    };

    public static DType ToDType(int elemType, string path, string what, string? node = null) =>
        TryDType(elemType) ?? throw HwGenException.At(path, node, $"tensor '{what}' {Unsupported(elemType)}");

    /// <summary>The reason an element type is refused, completing "tensor 'x' ...".</summary>
    public static string Unsupported(int elemType) => $"has element type {TypeName(elemType)}, which HwGen does not support" +
        (elemType is 4 or 5 or 21 or 22 ? " (HwGen's datapath is 8-bit: quantize weights and activations to int8 or uint8)" : "");

    /// <summary>An element type's name, also for the types newer than this build's onnx.proto (as onnx.proto spells them).</summary>
    static string TypeName(int elemType) => elemType switch
    {
        17 => "FLOAT8E4M3FN", 18 => "FLOAT8E4M3FNUZ", 19 => "FLOAT8E5M2", 20 => "FLOAT8E5M2FNUZ", 21 => "UINT4", 22 => "INT4", 23 => "FLOAT4E2M1",
        _ => ((TensorProto.Types.DataType)elemType).ToString(),
    };

    /// <summary>HwGen's type for an ONNX element type, or null when HwGen does not support it.</summary>
    public static DType? TryDType(int elemType) => (TensorProto.Types.DataType)elemType switch
    {
        TensorProto.Types.DataType.Float => DType.Float32,
        TensorProto.Types.DataType.Double => DType.Float64,
        TensorProto.Types.DataType.Int8 => DType.Int8,
        TensorProto.Types.DataType.Uint8 => DType.UInt8,
        TensorProto.Types.DataType.Int16 => DType.Int16,
        TensorProto.Types.DataType.Uint16 => DType.UInt16,
        TensorProto.Types.DataType.Int32 => DType.Int32,
        TensorProto.Types.DataType.Uint32 => DType.UInt32,
        TensorProto.Types.DataType.Int64 => DType.Int64,
        TensorProto.Types.DataType.Bool => DType.Bool,
        _ => null,
    };

    public static int FromDType(DType t) => (int)(t switch
    {
        DType.Float32 => TensorProto.Types.DataType.Float,
        DType.Float64 => TensorProto.Types.DataType.Double,
        DType.Int8 => TensorProto.Types.DataType.Int8,
        DType.UInt8 => TensorProto.Types.DataType.Uint8,
        DType.Int16 => TensorProto.Types.DataType.Int16,
        DType.UInt16 => TensorProto.Types.DataType.Uint16,
        DType.Int32 => TensorProto.Types.DataType.Int32,
        DType.UInt32 => TensorProto.Types.DataType.Uint32,
        DType.Int64 => TensorProto.Types.DataType.Int64,
        _ => TensorProto.Types.DataType.Bool,
    });

    /// <summary>Converts a tensor that <see cref="OnnxValidator.CheckTensor"/> accepts.</summary>
    public static Tensor ToTensor(TensorProto t, string path)
    {
        var type = ToDType(t.DataType, path, t.Name);
        var shape = t.Dims.Select(d => checked((int)d)).ToArray();
        int n = ShapeUtil.Size(shape);
        var data = new double[n];
        if (!t.RawData.IsEmpty)
        {
            var raw = t.RawData.Span;
            int w = type.Bits() / 8;
            for (int i = 0; i < n; i++)
            {
                var b = raw.Slice(i * w, w);
                data[i] = type switch
                {
                    DType.Float32 => BitConverter.ToSingle(b),
                    DType.Float64 => BitConverter.ToDouble(b),
                    DType.Int8 => (sbyte)b[0],
                    DType.UInt8 or DType.Bool => b[0],
                    DType.Int16 => BitConverter.ToInt16(b),
                    DType.UInt16 => BitConverter.ToUInt16(b),
                    DType.Int32 => BitConverter.ToInt32(b),
                    DType.UInt32 => BitConverter.ToUInt32(b),
                    _ => BitConverter.ToInt64(b),
                };
            }
        }
        else
        {
            IReadOnlyList<double> src = type switch
            {
                DType.Float32 => t.FloatData.Select(f => (double)f).ToArray(),
                DType.Float64 => t.DoubleData.ToArray(),
                DType.Int64 => t.Int64Data.Select(v => (double)v).ToArray(),
                DType.UInt32 => t.Uint64Data.Select(v => (double)v).ToArray(),
                _ => t.Int32Data.Select(v => (double)v).ToArray(),
            };
            for (int i = 0; i < n; i++) data[i] = src[i];
        }
        return new Tensor(type, shape, data);
    }

    public static TensorProto FromTensor(Tensor t, string name)
    {
        var p = new TensorProto { Name = name, DataType = FromDType(t.Type) };
        p.Dims.AddRange(t.Shape.Select(d => (long)d));
        var bytes = new List<byte>();
        foreach (var v in t.Data)
            bytes.AddRange(t.Type switch
            {
                DType.Float32 => BitConverter.GetBytes((float)v),
                DType.Float64 => BitConverter.GetBytes(v),
                DType.Int8 => [(byte)(sbyte)v],
                DType.UInt8 or DType.Bool => [(byte)v],
                DType.Int16 => BitConverter.GetBytes((short)v),
                DType.UInt16 => BitConverter.GetBytes((ushort)v),
                DType.Int32 => BitConverter.GetBytes((int)v),
                DType.UInt32 => BitConverter.GetBytes((uint)v),
                _ => BitConverter.GetBytes((long)v),
            });
        p.RawData = ByteString.CopyFrom(bytes.ToArray());
        return p;
    }
}
