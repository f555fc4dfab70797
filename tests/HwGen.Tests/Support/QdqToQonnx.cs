using Google.Protobuf;
using HwGen.Onnx;
using HwGen.Onnx.Proto;

namespace HwGen.Tests.Support;

/// <summary>
/// A QDQ model rewritten the way Brevitas writes QONNX: each QuantizeLinear of an activation and the DequantizeLinear nodes that
/// read it become one <c>Quant</c> (8 bits; signed for int8, unsigned for uint8; not narrow; ROUND, which is QuantizeLinear's
/// round half to even) in its place, whose output the DequantizeLinears' readers take. DequantizeLinear of constant weights
/// stays. Quant is QuantizeLinear followed by DequantizeLinear with the same parameters, so both models have the same meaning.
/// </summary>
public static class QdqToQonnx
{
    public const string Domain = "qonnx.custom_op.general";

    public static byte[] Convert(byte[] qdq)
    {
        var m = ModelProto.Parser.ParseFrom(qdq);
        var g = m.Graph;
        var inits = g.Initializer.ToDictionary(t => t.Name);
        var rename = new Dictionary<string, string>();
        var nodes = new List<NodeProto>();
        foreach (var n in g.Node)
        {
            if (n.OpType == "DequantizeLinear" && rename.ContainsKey(n.Output[0])) continue;
            if (n.OpType != "QuantizeLinear") { nodes.Add(n); continue; }
            var readers = g.Node.Where(r => r.Input.Contains(n.Output[0])).ToList();
            if (readers.Count == 0 || readers.Any(r => r.OpType != "DequantizeLinear")) throw new InvalidOperationException($"{n.Name}: a QuantizeLinear read by other nodes than DequantizeLinear");
            var zp = OnnxLoader.ToTensor(inits[n.Input[2]], "model");
            string tag = n.Name;
            string Float(string name, double v)
            {
                var t = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
                t.FloatData.Add((float)v);
                g.Initializer.Add(t);
                return name;
            }
            var quant = new NodeProto { Name = tag + "_qonnx", OpType = "Quant", Domain = Domain };
            quant.Input.AddRange([n.Input[0], n.Input[1], Float(tag + "_zeropt", zp.Data[0]), Float(tag + "_bitwidth", 8)]);
            quant.Output.Add(tag + "_qonnx_out");
            quant.Attribute.Add(new AttributeProto { Name = "signed", Type = AttributeProto.Types.AttributeType.Int, I = zp.Type == HwGen.Core.DType.Int8 ? 1 : 0 });
            quant.Attribute.Add(new AttributeProto { Name = "narrow", Type = AttributeProto.Types.AttributeType.Int, I = 0 });
            quant.Attribute.Add(new AttributeProto { Name = "rounding_mode", Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8("ROUND") });
            nodes.Add(quant);
            foreach (var r in readers) rename[r.Output[0]] = quant.Output[0];
        }
        foreach (var n in nodes)
            for (int i = 0; i < n.Input.Count; i++)
                if (rename.TryGetValue(n.Input[i], out var to)) n.Input[i] = to;
        foreach (var o in g.Output)
            if (rename.TryGetValue(o.Name, out var to)) nodes.Add(new NodeProto { Name = o.Name + "_out", OpType = "Identity", Input = { to }, Output = { o.Name } });
        g.Node.Clear();
        g.Node.AddRange(nodes);
        m.OpsetImport.Add(new OperatorSetIdProto { Domain = Domain, Version = 1 });
        return m.ToByteArray();
    }
}
