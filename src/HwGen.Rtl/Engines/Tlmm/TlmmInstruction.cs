using HwGen.Core;
using HwGen.Rtl.Engines.Dense;
using HwGen.Rtl.Program;

namespace HwGen.Rtl.Engines.Tlmm;

/// <summary>
/// TLMM: a GEMM (<see cref="Gemm"/>: the same fields, chaining, parameters, drain and timing, <see cref="DenseTimer"/>) on the
/// table-lookup ternary engine, whose weight lines hold packed ternary codes (<see cref="TlmmCodes"/>) instead of int8 bytes.
/// Its field table is the GEMM's: one table, two opcodes.
/// </summary>
public sealed record Tlmm : Gemm
{
    public Tlmm(Gemm gemm) : base(gemm) { }

    public static new readonly InstructionFormat Layout = new("TLMM", 7, Gemm.Layout.Fields);

    public override InstructionFormat Format => Layout;
    public override string Unit => TlmmEngine.Id;
    protected override string Text => "TLMM" + base.Text["GEMM".Length..];

    protected override int WeightOf(byte[] line, int col, int input, HwConfig c) => TlmmCodes.WeightOf(line, col, input, c.ArrayRows, c.TlmmGroup);
}
