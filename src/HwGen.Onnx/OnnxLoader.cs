using Google.Protobuf;
using HwGen.Core;
using HwGen.Onnx.Proto;

namespace HwGen.Onnx;

/// <summary>Reads .onnx files and TensorProto .pb files into HwGen's ONNX model and tensors.</summary>
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
        return FromProto(proto, path);
    }

    public static OnnxModel FromProto(ModelProto proto, string path)
    {
        var g = proto.Graph;
        long opset = proto.OpsetImport.Where(o => o.Domain is "" or "ai.onnx").Select(o => o.Version).DefaultIfEmpty(1).Max();
        var inits = new Dictionary<string, Tensor>();
        foreach (var t in g.Initializer) inits[t.Name] = ToTensor(t, path);
        int n = 0;
        var nodes = g.Node.Select(nd => new OnnxNode(
            nd.Name.Length > 0 ? nd.Name : $"{nd.OpType}_{n++}", nd.OpType, nd.Domain, nd.Input.ToArray(), nd.Output.ToArray(),
            nd.Attribute.ToDictionary(a => a.Name, a => ToAttribute(a, path)))).ToList();
        string name = g.Name.Length > 0 ? g.Name : System.IO.Path.GetFileNameWithoutExtension(path);
        return new OnnxModel
        {
            Path = path, Name = name, Opset = opset,
            Inputs = g.Input.Select(v => ToValueInfo(v, path)).ToList(),
            Outputs = g.Output.Select(v => ToValueInfo(v, path)).ToList(),
            Initializers = inits, Nodes = nodes,
        };
    }

    /// <summary>Reads a serialized TensorProto (as in the ONNX conformance test data sets).</summary>
    public static Tensor LoadTensor(string path)
    {
        try { return ToTensor(TensorProto.Parser.ParseFrom(File.ReadAllBytes(path)), path); }
        catch (InvalidProtocolBufferException e) { throw HwGenException.At(path, null, $"not a TensorProto ({e.Message})"); }
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

    public static DType ToDType(int elemType, string path, string what) => (TensorProto.Types.DataType)elemType switch
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
        var t => throw HwGenException.At(path, null, $"tensor '{what}' has element type {t}, which HwGen does not support"),
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

    public static Tensor ToTensor(TensorProto t, string path)
    {
        if (t.DataLocation == TensorProto.Types.DataLocation.External)
            throw HwGenException.At(path, null, $"tensor '{t.Name}' uses external data, which HwGen does not read");
        var type = ToDType(t.DataType, path, t.Name);
        var shape = t.Dims.Select(d => checked((int)d)).ToArray();
        int n = ShapeUtil.Size(shape);
        var data = new double[n];
        if (!t.RawData.IsEmpty)
        {
            var raw = t.RawData.Span;
            int w = type.Bits() / 8;
            if (raw.Length != n * w) throw HwGenException.At(path, null, $"tensor '{t.Name}' has {raw.Length} raw bytes, expected {n * w}");
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
            if (src.Count != n) throw HwGenException.At(path, null, $"tensor '{t.Name}' holds {src.Count} values, its shape needs {n}");
            var (lo, hi) = type.Range();
            for (int i = 0; i < n; i++)
            {
                if (type.IsInteger() && (src[i] < lo || src[i] > hi))
                    throw HwGenException.At(path, null, $"tensor '{t.Name}' holds {src[i]}, out of range for {type.Name()}");
                data[i] = src[i];
            }
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
