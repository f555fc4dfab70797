using HwGen.Core;
using HwGen.Core.Ir;

namespace HwGen.Tests.Core;

/// <summary>Attention mask descriptions (<see cref="AttentionMask"/>): columns per row, text form, Λ recognition, ViTCoD's split
/// and the rules of a valid mask.</summary>
public sealed class AttentionMaskTests
{
    /// <summary>Λ from its definition: causal M[i,j] = j ≤ i and (j &lt; S or i - j &lt; W); not causal |i - j| &lt; W for the window.</summary>
    static bool LambdaKeeps(int s, int w, bool causal, int i, int j) =>
        causal ? j <= i && (j < s || i - j < w) : j < s || Math.Abs(i - j) < w;

    [Fact]
    public void Lambda_gives_two_ranges_per_row_that_match_its_definition()
    {
        var rng = new Random(1);
        for (int trial = 0; trial < 40; trial++)
        {
            int n = rng.Next(1, 20), s = rng.Next(0, 5), w = rng.Next(1, 8);
            bool causal = rng.Next(2) == 0;
            var mask = new AttentionMask.Lambda(s, w, causal);
            for (int i = 0; i < n; i++)
            {
                var cols = mask.Columns(i, n).ToArray();
                Assert.Equal(Enumerable.Range(0, n).Where(j => LambdaKeeps(s, w, causal, i, j)), cols);
            }
        }
    }

    [Theory]
    [InlineData("dense")]
    [InlineData("causal")]
    [InlineData("lambda(s=2, w=4, causal)")]
    [InlineData("lambda(s=0, w=3)")]
    [InlineData("csr(ptr=[0,2,3,4], col=[0,2,1,2])")]
    [InlineData("vitcod(theta=0.5, dense=[0], ptr=[0,1,1,2], col=[2,1])")]
    public void The_text_form_reads_back(string text)
    {
        var mask = AttentionMask.Parse(text);
        Assert.Equal(text, mask.ToString());
        Assert.Null(mask.Check(3, 3));
        Assert.Equal(text, AttentionMask.Parse(mask.ToString()).ToString());
    }

    [Theory]
    [InlineData("sparse", "unknown mask kind 'sparse'")]
    [InlineData("lambda(s=2)", "lambda needs 'w'")]
    [InlineData("csr(ptr=[0,1], col=[0.5])", "'0.5' is no integer")]
    [InlineData("causal(s=1)", "causal takes no 's'")]
    [InlineData("dense x", "unexpected 'x'")]
    public void Bad_text_is_an_error_saying_what(string text, string why)
    {
        var e = Assert.Throws<HwGenException>(() => AttentionMask.Parse(text));
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void A_lambda_pattern_is_recognized_as_lambda_and_any_other_becomes_csr_with_the_same_keeps()
    {
        var rng = new Random(2);
        for (int trial = 0; trial < 30; trial++)
        {
            int n = rng.Next(8, 16);
            var lambda = new AttentionMask.Lambda(rng.Next(1, 3), rng.Next(2, 4), rng.Next(2) == 0);
            var keep = lambda.Keep(n, n);
            var found = AttentionMask.FromKeep(keep, n, n);
            Assert.IsType<AttentionMask.Lambda>(found);
            Assert.Equal(keep, found.Keep(n, n));
            // One more kept position between the last row's two ranges (the first column after its sinks) makes it no Λ:
            // rows from S + W on do not keep that column.
            int row = n - 1, col = lambda.Sinks;
            Assert.False(keep[row * n + col]);
            keep[row * n + col] = true;
            var other = AttentionMask.FromKeep(keep, n, n);
            Assert.IsType<AttentionMask.Csr>(other);
            Assert.Equal(keep, other.Keep(n, n));
        }
        Assert.IsType<AttentionMask.Dense>(AttentionMask.FromKeep(new AttentionMask.Dense().Keep(5, 5), 5, 5));
        Assert.IsType<AttentionMask.Causal>(AttentionMask.FromKeep(new AttentionMask.Causal().Keep(5, 5), 5, 5));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(0.3)]
    [InlineData(0.6)]
    [InlineData(1.0)]
    public void Vitcod_makes_the_columns_attended_by_more_than_theta_rows_dense(double theta)
    {
        var rng = new Random(3);
        int rows = 12, n = 12;
        var keep = Enumerable.Range(0, rows * n).Select(i => i % n == i / n || i % n < 2 && rng.Next(4) > 0 || rng.Next(5) == 0).ToArray();
        var mask = AttentionMask.FromKeep(keep, rows, n);
        var split = AttentionMask.Split(mask, theta, rows, n);
        Assert.Null(split.Check(rows, n));
        for (int j = 0; j < n; j++)
        {
            int count = Enumerable.Range(0, rows).Count(i => keep[i * n + j]);
            Assert.Equal(count > theta * rows, split.DenseColumns.Contains(j));
        }
        // Every row attends the dense columns, and its own columns elsewhere.
        for (int i = 0; i < rows; i++)
            Assert.Equal(Enumerable.Range(0, n).Where(j => split.DenseColumns.Contains(j) || keep[i * n + j]), split.Columns(i, n));
        Assert.Equal(split.ToString(), AttentionMask.Parse(split.ToString()).ToString());
    }

    [Theory]
    [InlineData("csr(ptr=[0,1,1,2], col=[0,1])", "row 1 of the CSR mask has no non-zero: its softmax would divide by zero")]
    [InlineData("csr(ptr=[0,2,3,4], col=[1,0,1,2])", "column indices of row 0 are not increasing (1 then 0)")]
    [InlineData("csr(ptr=[0,1,2,3], col=[0,1,3])", "column index 3 of row 2 is outside the 3 key positions")]
    [InlineData("csr(ptr=[0,1,2], col=[0,1])", "the CSR mask has 2 rows (row pointers: rows + 1), the sequence 3")]
    [InlineData("vitcod(theta=1.5, dense=[0], ptr=[0,0,0,0], col=[])", "ViTCoD θ 1.5 is outside [0, 1]")]
    [InlineData("vitcod(theta=0.5, dense=[0], ptr=[0,1,1,1], col=[0])", "column 0 of row 0 is a dense column too")]
    [InlineData("lambda(s=1, w=0)", "Λ window 0 must be at least 1 (the diagonal)")]
    public void A_bad_mask_says_why(string text, string why) =>
        Assert.Equal(why, AttentionMask.Parse(text).Check(3, 3));
}
