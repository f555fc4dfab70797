namespace HwGen.Reference.NnLut;

/// <summary>The nonlinear functions the NN-LUT units approximate.</summary>
public enum LutFunction { Gelu, Erf, Sigmoid, Tanh, Silu, Exp, Reciprocal, Rsqrt }

/// <summary>The functions in double precision: what the tables are fitted to and measured against.</summary>
public static class Functions
{
    public static string Name(LutFunction f) => f.ToString().ToLowerInvariant();

    public static LutFunction Parse(string name) =>
        Enum.GetValues<LutFunction>().FirstOrDefault(f => Name(f) == name.ToLowerInvariant(), (LutFunction)(-1)) is var f && (int)f >= 0
            ? f
            : throw new Core.HwGenException($"unknown nonlinear function '{name}' (one of {string.Join(", ", Enum.GetValues<LutFunction>().Select(Name))})");

    public static double Eval(LutFunction f, double x) => f switch
    {
        LutFunction.Gelu => 0.5 * x * (1 + Erf(x / Math.Sqrt(2))),
        LutFunction.Erf => Erf(x),
        LutFunction.Sigmoid => 1 / (1 + Math.Exp(-x)),
        LutFunction.Tanh => Math.Tanh(x),
        LutFunction.Silu => x / (1 + Math.Exp(-x)),
        LutFunction.Exp => Math.Exp(x),
        LutFunction.Reciprocal => 1 / x,
        LutFunction.Rsqrt => 1 / Math.Sqrt(x),
        _ => throw new ArgumentOutOfRangeException(nameof(f)),
    };

    /// <summary>
    /// The error function to about 1e-15: erf(x) = 2/sqrt(pi) * exp(-x^2) * sum_n 2^n x^(2n+1) / (1*3*...*(2n+1)),
    /// a series of positive terms (no cancellation) that converges for every x; |x| >= 6 gives +-1 exactly in double.
    /// </summary>
    public static double Erf(double x)
    {
        if (double.IsNaN(x)) return double.NaN;
        double a = Math.Abs(x);
        if (a >= 6) return Math.Sign(x);
        double term = a, sum = a, x2 = a * a;
        for (int n = 1; n < 500 && term > sum * 1e-17; n++)
        {
            term *= 2 * x2 / (2 * n + 1);
            sum += term;
        }
        return Math.Sign(x) * 2 / Math.Sqrt(Math.PI) * Math.Exp(-x2) * sum;
    }
}
