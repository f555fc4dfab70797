namespace HwGen.Rtl.Program;

public enum Opcode { End = 0, Load = 1, Store = 2, Gemm = 3, Vec = 4 }

/// <summary>
/// One controller instruction, 32 bytes = eight little-endian 32-bit words:
/// <code>
/// w0: [3:0] opcode, [4] first (GEMM: load parameters, acc = bias), [5] last (GEMM: requantize and write)
/// LOAD/STORE: w1 off-chip word address, w2 scratchpad line, w3 line count
/// GEMM:       w1 activation line, w2 weight line, w3 reduction length (lines), w4 parameter line,
///             w5 output line, w6 [7:0] valid columns, [15:8] input zero point,
///             w7 [7:0] output zero point, [15:8] clamp min, [23:16] clamp max
/// VEC:        w0 [4] first tile of the row, [5] last tile of the row, [6] output pass (write results);
///             w1 source line, w2 destination line, w3 line count, w4 [7:0] unit, [9:8] pass
/// </code>
/// </summary>
public sealed record Instruction(Opcode Op, string Comment)
{
    public bool First { get; init; }
    public bool Last { get; init; }
    public long Ext { get; init; }
    public int SpadLine { get; init; }
    public int Lines { get; init; }
    public int ActLine { get; init; }
    public int WeightLine { get; init; }
    public int ParamLine { get; init; }
    public int OutLine { get; init; }
    public int Cols { get; init; }
    public int Zx { get; init; }
    public int Zy { get; init; }
    public int QMin { get; init; }
    public int QMax { get; init; }
    public int Unit { get; init; }
    public int Pass { get; init; }
    public bool Output { get; init; }

    public const int Bytes = 32;

    public uint[] Encode()
    {
        var w = new uint[8];
        w[0] = (uint)Op | (First ? 1u << 4 : 0) | (Last ? 1u << 5 : 0) | (Output ? 1u << 6 : 0);
        switch (Op)
        {
            case Opcode.Load or Opcode.Store:
                w[1] = checked((uint)Ext); w[2] = (uint)SpadLine; w[3] = (uint)Lines;
                break;
            case Opcode.Gemm:
                w[1] = (uint)ActLine; w[2] = (uint)WeightLine; w[3] = (uint)Lines; w[4] = (uint)ParamLine; w[5] = (uint)OutLine;
                w[6] = (uint)Cols | (uint)(byte)Zx << 8;
                w[7] = (byte)Zy | (uint)(byte)QMin << 8 | (uint)(byte)QMax << 16;
                break;
            case Opcode.Vec:
                w[1] = (uint)ActLine; w[2] = (uint)OutLine; w[3] = (uint)Lines; w[4] = (uint)(byte)Unit | (uint)(Pass & 3) << 8;
                break;
        }
        return w;
    }

    public override string ToString() => Op switch
    {
        Opcode.Load => $"LOAD  ext={Ext} -> spad={SpadLine} lines={Lines}  ; {Comment}",
        Opcode.Store => $"STORE spad={SpadLine} -> ext={Ext} lines={Lines}  ; {Comment}",
        Opcode.Gemm => $"GEMM  act={ActLine} w={WeightLine} k={Lines} param={ParamLine} out={OutLine} cols={Cols}{(First ? " first" : "")}{(Last ? " last" : "")}  ; {Comment}",
        Opcode.Vec => $"VEC   unit={Unit} pass={Pass} src={ActLine}{(Output ? $" -> dst={OutLine}" : "")} lines={Lines}{(First ? " first" : "")}{(Last ? " last" : "")}  ; {Comment}",
        _ => "END",
    };
}
