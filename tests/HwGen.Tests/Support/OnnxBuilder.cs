using Google.Protobuf;
using HwGen.Core;
using HwGen.Onnx;
using HwGen.Onnx.Proto;

namespace HwGen.Tests.Support;

/// <summary>Builds ONNX models in tests, with protobuf classes generated from onnx.proto.</summary>
public sealed class OnnxBuilder
{
    readonly ModelProto model = new() { IrVersion = 8, ProducerName = "hwgen-tests" };
    readonly GraphProto g = new() { Name = "test" };
    int counter;

    public OnnxBuilder(long opset = 13)
    {
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = opset });
        model.Graph = g;
    }

    public string Init(string name, Tensor t)
    {
        g.Initializer.Add(OnnxLoader.FromTensor(t, name));
        return name;
    }

    public string Init(string name, DType type, int[] shape, params double[] data) => Init(name, new Tensor(type, shape, data));

    /// <summary>Replaces the initializer <paramref name="name"/> (for tests that edit a built model).</summary>
    public void Replace(string name, DType type, int[] shape, params double[] data)
    {
        g.Initializer.Remove(g.Initializer.Single(i => i.Name == name));
        Init(name, type, shape, data);
    }

    /// <summary>An integer initializer stored in int32_data (as some exporters write it), values unchecked.</summary>
    public string InitInt32Data(string name, DType type, int[] shape, params int[] data)
    {
        var t = new TensorProto { Name = name, DataType = OnnxLoader.FromDType(type) };
        t.Dims.AddRange(shape.Select(d => (long)d));
        t.Int32Data.AddRange(data);
        g.Initializer.Add(t);
        return name;
    }

    /// <summary>An initializer of any ONNX element type (also those HwGen does not read, such as INT4 = 22) from its raw bytes.</summary>
    public string InitRaw(string name, int elemType, int[] shape, byte[] raw)
    {
        var t = new TensorProto { Name = name, DataType = elemType, RawData = ByteString.CopyFrom(raw) };
        t.Dims.AddRange(shape.Select(d => (long)d));
        g.Initializer.Add(t);
        return name;
    }

    /// <summary>Imports another operator domain (QONNX's, say) at a version.</summary>
    public OnnxBuilder Import(string domain, long version)
    {
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = domain, Version = version });
        return this;
    }

    public string Node(string op, IEnumerable<string> inputs, string? name = null, params (string Key, object Value)[] attrs) =>
        NodeIn("", op, inputs, name, attrs);

    /// <summary>A node with <paramref name="outputs"/> outputs, named name_out0, name_out1, ... (Split).</summary>
    public string[] Node(string op, IEnumerable<string> inputs, int outputs, string name, params (string Key, object Value)[] attrs)
    {
        NodeIn("", op, inputs, name, attrs);
        var n = g.Node[^1];
        n.Output.Clear();
        n.Output.AddRange(Enumerable.Range(0, outputs).Select(i => $"{name}_out{i}"));
        return [.. n.Output];
    }

    /// <summary>A node of the given operator domain.</summary>
    public string NodeIn(string domain, string op, IEnumerable<string> inputs, string? name = null, params (string Key, object Value)[] attrs)
    {
        var n = new NodeProto { OpType = op, Domain = domain, Name = name ?? $"{op}_{counter}" };
        n.Input.AddRange(inputs);
        var output = $"{n.Name}_out";
        n.Output.Add(output);
        counter++;
        foreach (var (k, v) in attrs)
        {
            var a = new AttributeProto { Name = k };
            switch (v)
            {
                case int i: a.Type = AttributeProto.Types.AttributeType.Int; a.I = i; break;
                case float f: a.Type = AttributeProto.Types.AttributeType.Float; a.F = f; break;
                case long[] ls: a.Type = AttributeProto.Types.AttributeType.Ints; a.Ints.AddRange(ls); break;
                case string str: a.Type = AttributeProto.Types.AttributeType.String; a.S = ByteString.CopyFromUtf8(str); break;
                case Tensor t: a.Type = AttributeProto.Types.AttributeType.Tensor; a.T = OnnxLoader.FromTensor(t, k); break;
                default: throw new ArgumentException($"attribute type {v.GetType()}");
            }
            n.Attribute.Add(a);
        }
        g.Node.Add(n);
        return output;
    }

    public void Input(string name, DType type, params int[] shape) => g.Input.Add(ValueInfo(name, type, shape));
    public void Output(string name, DType type, params int[] shape) => g.Output.Add(ValueInfo(name, type, shape));

    static ValueInfoProto ValueInfo(string name, DType type, int[] shape)
    {
        var tt = new TypeProto.Types.Tensor { ElemType = OnnxLoader.FromDType(type), Shape = new TensorShapeProto() };
        foreach (var d in shape) tt.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = tt } };
    }

    public byte[] Bytes() => model.ToByteArray();

    public string Save(string path)
    {
        File.WriteAllBytes(path, Bytes());
        return path;
    }
}
