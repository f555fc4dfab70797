using System.Globalization;
using System.Text;
using HwGen.Reference.NnLut;

namespace HwGen.Cli;

/// <summary>
/// Accuracy of the NN-LUT units against double precision, next to the I-BERT integer kernels computed the same
/// way: every int8 input (element-wise functions, exp), every v in [1, 2^20) (reciprocal, rsqrt), and fixed
/// pseudo-random int8 rows (softmax, LayerNorm). Errors are absolute, in quanta of the unit's output format.
/// </summary>
public static class NnLutBench
{
    /// <summary>One measured row: a function, a method (NN-LUT with N entries, I-BERT, ideal rounding) and its errors.</summary>
    public sealed record Row(string Function, string Format, string Method, double MaxError, double MeanError);

    sealed record ElementwiseCase(LutFunction F, double InScale, double OutScale, int OutZeroPoint);

    static readonly ElementwiseCase[] Elementwise =
    [
        new(LutFunction.Gelu, 1 / 16.0, 1 / 16.0, 0),
        new(LutFunction.Erf, 1 / 32.0, 1 / 128.0, 0),
        new(LutFunction.Sigmoid, 1 / 16.0, 1 / 256.0, -128),
        new(LutFunction.Tanh, 1 / 32.0, 1 / 128.0, 0),
        new(LutFunction.Silu, 1 / 16.0, 1 / 16.0, 0),
    ];

    public const double SoftmaxInScale = 1 / 16.0, SoftmaxOutScale = 1 / 256.0;
    public const int SoftmaxOutZeroPoint = -128, RowLength = 64, Rows = 200;
    public const double LayerNormOutScale = 1 / 32.0;

    public static IReadOnlyList<Row> Run()
    {
        var rows = new List<Row>();
        foreach (var c in Elementwise)
        {
            string fmt = $"int8 s={Fmt(c.InScale)} to int8 s={Fmt(c.OutScale)} zp={c.OutZeroPoint}";
            double Ideal(int q) => Functions.Eval(c.F, c.InScale * q) / c.OutScale + c.OutZeroPoint;
            foreach (var n in LutTables.SupportedEntries)
            {
                var t = LutTables.Elementwise(c.F, n, c.InScale, 0, c.OutScale, c.OutZeroPoint);
                rows.Add(Measure(Functions.Name(c.F), fmt, $"NN-LUT {n}", Int8(), q => t.Eval(q), Ideal));
            }
            if (c.F == LutFunction.Gelu)
                rows.Add(Measure("gelu", fmt, "I-BERT i-GELU", Int8(), q => Requant(IBert.Gelu(q, c.InScale), c.OutScale, c.OutZeroPoint), Ideal));
            rows.Add(Measure(Functions.Name(c.F), fmt, "exact, rounded to int8", Int8(), q => Requant(Functions.Eval(c.F, c.InScale * q), c.OutScale, c.OutZeroPoint), Ideal));
        }

        string expFmt = $"x-max in [-255, 0], s={Fmt(SoftmaxInScale)} to Q1.{LutTables.ExpFracBits}";
        double one = 1 << LutTables.ExpFracBits;
        var diffs = Enumerable.Range(-LutTables.ExpDomain, LutTables.ExpDomain + 1).ToArray();
        double ExpIdeal(int d) => one * Math.Exp(SoftmaxInScale * d);
        foreach (var n in LutTables.SupportedEntries)
        {
            var t = LutTables.Exp(n, SoftmaxInScale);
            rows.Add(Measure("exp", expFmt, $"NN-LUT {n}", diffs, d => t.Eval(d), ExpIdeal));
        }
        rows.Add(Measure("exp", expFmt, "I-BERT i-exp", diffs, d => Math.Round(IBert.Exp(d, SoftmaxInScale) * one), ExpIdeal));

        var vs = Enumerable.Range(1, (1 << 20) - 1).ToArray();
        double ulp = 1L << LutTables.RecipFracBits;
        foreach (var n in LutTables.SupportedEntries)
        {
            var rt = LutTables.Reciprocal(n);
            rows.Add(Measure("reciprocal", "v in [1, 2^20), relative, in 2^-16", $"NN-LUT {n}", vs, v =>
            {
                var (i, e) = Normalizer.Reciprocal(v);
                return rt.Eval(i) * Math.Pow(2, -e) * v;
            }, _ => ulp));
            var st = LutTables.Rsqrt(n);
            rows.Add(Measure("rsqrt", "v in [1, 2^20), relative, in 2^-16", $"NN-LUT {n}", vs, v =>
            {
                var (i, h) = Normalizer.Rsqrt(v);
                return st.Eval(i) * Math.Pow(2, -h) * Math.Sqrt(v);
            }, _ => ulp));
        }

        var data = RandomRows(RowLength, Rows, 1);
        string smFmt = $"rows of {RowLength}, int8 s={Fmt(SoftmaxInScale)} to int8 s=1/256 zp=-128";
        foreach (var n in LutTables.SupportedEntries)
        {
            var u = SoftmaxUnit.Create(n, SoftmaxInScale, SoftmaxOutScale, SoftmaxOutZeroPoint, RowLength);
            rows.Add(MeasureRows("softmax", smFmt, $"NN-LUT {n}", data, r => { var y = new int[r.Length]; u.Run(r, y); return y.Select(v => (double)v).ToArray(); }, SoftmaxIdeal));
        }
        rows.Add(MeasureRows("softmax", smFmt, "I-BERT (i-exp, integer reciprocal)", data,
            r => IBert.Softmax(r, SoftmaxInScale).Select(p => Requant(p, SoftmaxOutScale, SoftmaxOutZeroPoint)).ToArray(), SoftmaxIdeal));
        rows.Add(MeasureRows("softmax", smFmt, "exact, rounded to int8", data, r => SoftmaxIdeal(r).Select(v => Math.Clamp(Math.Round(v), -128, 127)).ToArray(), SoftmaxIdeal));

        var (gamma, beta) = LayerNormAffine(RowLength);
        string lnFmt = $"rows of {RowLength}, int8 to int8 s={Fmt(LayerNormOutScale)}";
        foreach (var n in LutTables.SupportedEntries)
        {
            var u = LayerNormUnit.Create(n, RowLength, 1 / 16.0, 1e-5, gamma, beta, LayerNormOutScale, 0);
            rows.Add(MeasureRows("layernorm", lnFmt, $"NN-LUT {n}", data, r => { var y = new int[r.Length]; u.Run(r, y); return y.Select(v => (double)v).ToArray(); },
                r => LayerNormIdeal(r, gamma, beta)));
        }
        rows.Add(MeasureRows("layernorm", lnFmt, "I-BERT i-LayerNorm", data,
            r => IBert.LayerNorm(r, gamma, beta).Select(v => Requant(v, LayerNormOutScale, 0)).ToArray(), r => LayerNormIdeal(r, gamma, beta)));
        rows.Add(MeasureRows("layernorm", lnFmt, "exact, rounded to int8", data,
            r => LayerNormIdeal(r, gamma, beta).Select(v => Math.Clamp(Math.Round(v), -128, 127)).ToArray(), r => LayerNormIdeal(r, gamma, beta)));
        return rows;
    }

    static int[] Int8() => Enumerable.Range(-128, 256).ToArray();

    static double Requant(double real, double scale, int zp) => Math.Clamp(Math.Round(real / scale, MidpointRounding.ToEven) + zp, -128, 127);

    static Row Measure(string f, string fmt, string method, int[] xs, Func<int, double> got, Func<int, double> ideal)
    {
        double max = 0, sum = 0;
        foreach (var x in xs)
        {
            double e = Math.Abs(got(x) - ideal(x));
            max = Math.Max(max, e);
            sum += e;
        }
        return new Row(f, fmt, method, max, sum / xs.Length);
    }

    static Row MeasureRows(string f, string fmt, string method, int[][] rows, Func<int[], double[]> got, Func<int[], double[]> ideal)
    {
        double max = 0, sum = 0;
        long n = 0;
        foreach (var r in rows)
        {
            var g = got(r);
            var i = ideal(r);
            for (int k = 0; k < r.Length; k++) { double e = Math.Abs(g[k] - i[k]); max = Math.Max(max, e); sum += e; n++; }
        }
        return new Row(f, fmt, method, max, sum / n);
    }

    /// <summary>Rows of int8 codes with spreads from narrow to the full range, from a fixed seed; the first holds
    /// -128..127 shuffled when the length allows it.</summary>
    public static int[][] RandomRows(int length, int count, int seed)
    {
        var rng = new Random(seed);
        var rows = new int[count][];
        for (int r = 0; r < count; r++)
        {
            int spread = 1 + r * 127 / Math.Max(1, count - 1);
            int centre = rng.Next(-128 + spread, 128 - spread);
            rows[r] = Enumerable.Range(0, length).Select(_ => Math.Clamp(centre + rng.Next(-spread, spread + 1), -128, 127)).ToArray();
        }
        return rows;
    }

    public static (double[] Gamma, double[] Beta) LayerNormAffine(int length)
    {
        var rng = new Random(7);
        return (Enumerable.Range(0, length).Select(_ => 0.5 + rng.NextDouble()).ToArray(), Enumerable.Range(0, length).Select(_ => rng.NextDouble() - 0.5).ToArray());
    }

    static double[] SoftmaxIdeal(int[] q)
    {
        var e = q.Select(v => Math.Exp(SoftmaxInScale * (v - q.Max()))).ToArray();
        double s = e.Sum();
        return e.Select(v => v / s / SoftmaxOutScale + SoftmaxOutZeroPoint).ToArray();
    }

    static double[] LayerNormIdeal(int[] q, double[] gamma, double[] beta)
    {
        double s = 1 / 16.0;
        double mean = q.Average() * s, var = q.Select(v => (v * s - mean) * (v * s - mean)).Average();
        return q.Select((v, i) => ((v * s - mean) / Math.Sqrt(var + 1e-5) * gamma[i] + beta[i]) / LayerNormOutScale).ToArray();
    }

    static string Fmt(double s) => s < 1 && Math.Abs(1 / s - Math.Round(1 / s)) < 1e-9 ? $"1/{Math.Round(1 / s)}" : s.ToString("G4", CultureInfo.InvariantCulture);

    /// <summary>The whole results document: accuracy table and the conformance cases, with how they were measured.</summary>
    public static string Document() =>
        Intro + "\n\n" + Markdown(Run()) + "\n" + ConformanceIntro + "\n\n" + NnLutConformance.Markdown(NnLutConformance.Run());

    const string Intro = """
# NN-LUT units: accuracy

Made by `./hwgen bench nnlut -o bench/nnlut-results.md` (under a second). Resources per unit: [nnlut-resources.md](nnlut-resources.md).

## Accuracy against double precision

Absolute errors in quanta of each unit's output format: int8 output quanta for the element-wise units, softmax and
LayerNorm; Q1.15 quanta (2^-15) for exp; relative error in 2^-16 for reciprocal and rsqrt (dominated by the
8-bit mantissa index). Element-wise functions and exp: every int8 input; reciprocal and rsqrt: every v in [1, 2^20);
softmax and LayerNorm: 200 fixed pseudo-random rows of 64 with spreads from 1 to 127 codes. "exact, rounded to
int8" is the floor any int8 unit has. I-BERT is computed from the paper's integer formulas at the same int8 input
scale; its constants lose precision at such coarse scales (ln 2 becomes 12 quanta at s = 1/16, the integer mean
of i-LayerNorm is off by up to half a code), which is most of its error here. At a fine scale (1/1024) i-GELU is
within 0.02 and i-exp within 0.005 of the exact function (tested). The maxima of 1.0 (erf, tanh) and 0.909
(sigmoid) are int8's own: +1 would need code 128.
""";

    const string ConformanceIntro = """

## ONNX conformance node tests through the units (16 entries)

The float input is quantized to int8 (scale max|x|/127), each row along the op's axes goes through the unit's
golden model (which the RTL equals bit for bit), and the int8 output is dequantized (softmax: scale 1/256, zero
point -128; LayerNorm: scale max|y|/127). "int8 floor" is the same path with the exact function: what int8 alone
costs. `test_softmax_large_number` has inputs near 10,000 that differ by 1: int8 cannot hold the differences.
""";

    public static string Markdown(IReadOnlyList<Row> rows)
    {
        var sb = new StringBuilder();
        sb.AppendLine("| function | format | method | max abs error | mean abs error |");
        sb.AppendLine("|---|---|---|---:|---:|");
        foreach (var r in rows)
            sb.AppendLine(CultureInfo.InvariantCulture, $"| {r.Function} | {r.Format} | {r.Method} | {r.MaxError:F3} | {r.MeanError:F3} |");
        return sb.ToString();
    }
}
