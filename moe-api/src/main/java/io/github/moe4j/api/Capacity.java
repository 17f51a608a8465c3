package io.github.moe4j.api;

/**
 * How many assignments each expert may take per routing group (SPEC §4): unlimited
 * ({@link Dropless}), from a factor ({@link Factor}) or a fixed number ({@link Fixed}).
 */
public sealed interface Capacity permits Capacity.Dropless, Capacity.Factor, Capacity.Fixed {

    /**
     * The capacity C of one group of {@code tokens} tokens, or {@link Integer#MAX_VALUE} when
     * nothing is dropped. Never more than {@code tokens} for a limited capacity.
     */
    int perExpert(int tokens, int experts, int k);

    /** Nothing is dropped (Mixtral, MegaBlocks dMoE). */
    record Dropless() implements Capacity {
        @Override
        public int perExpert(int tokens, int experts, int k) {
            return Integer.MAX_VALUE;
        }
    }

    /**
     * \( C = \min(T, \max(\mathit{min}, \mathrm{round}(cf \cdot b \cdot T / E))) \), b = k or 1 per
     * {@link CapacityBase}. Computed in exact decimal arithmetic on the factor as written (its
     * shortest decimal form, {@link java.math.BigDecimal#valueOf(double)}), so {@code 1.1 * 10 / 11}
     * is exactly 1; DeepSpeed's float product can round up there.
     *
     * @param factor      cf, strictly positive and finite
     * @param base        whether cf multiplies tokens or k·tokens
     * @param rounding    how the fraction is rounded
     * @param minCapacity the floor applied after rounding, at least 0
     */
    record Factor(double factor, CapacityBase base, Rounding rounding, int minCapacity) implements Capacity {
        public Factor {
            Checks.requireStrictlyPositiveFinite(factor, "capacity.factor");
            Checks.requireNonNull(base, "capacity.base");
            Checks.requireNonNull(rounding, "capacity.rounding");
            Checks.requireNonNegative(minCapacity, "capacity.minCapacity");
        }

        @Override
        public int perExpert(int tokens, int experts, int k) {
            java.math.BigDecimal numerator = java.math.BigDecimal.valueOf(factor)
                    .multiply(java.math.BigDecimal.valueOf((long) tokens * (base == CapacityBase.ASSIGNMENTS ? k : 1)));
            java.math.BigDecimal[] qr = numerator.divideAndRemainder(java.math.BigDecimal.valueOf(experts));
            long floor = qr[0].longValueExact();
            int sign = qr[1].signum();
            long rounded = switch (rounding) {
                case FLOOR -> floor;
                case CEIL -> sign > 0 ? floor + 1 : floor;
                case ROUND_HALF_EVEN -> {
                    int half = qr[1].multiply(java.math.BigDecimal.valueOf(2)).compareTo(java.math.BigDecimal.valueOf(experts));
                    yield half > 0 || (half == 0 && (floor & 1) == 1) ? floor + 1 : floor;
                }
            };
            return (int) Math.min(tokens, Math.max(minCapacity, rounded));
        }
    }

    /**
     * A fixed capacity per expert and group, clamped to T. Hugging Face Switch {@code expert_capacity}.
     *
     * @param perExpert C, at least 0
     */
    record Fixed(int perExpert) implements Capacity {
        public Fixed {
            Checks.requireNonNegative(perExpert, "capacity.perExpert");
        }

        @Override
        public int perExpert(int tokens, int experts, int k) {
            return Math.min(tokens, perExpert);
        }
    }

    /** Nothing is dropped. */
    static Capacity dropless() {
        return new Dropless();
    }

    /** \( C = cf \cdot T/E \), rounded up, no minimum. */
    static Capacity factor(double factor) {
        return new Factor(factor, CapacityBase.TOKENS, Rounding.CEIL, 0);
    }

    /** The general factor form. */
    static Capacity factor(double factor, CapacityBase base, Rounding rounding, int minCapacity) {
        return new Factor(factor, base, rounding, minCapacity);
    }

    /** A fixed C per expert and group. */
    static Capacity fixed(int perExpert) {
        return new Fixed(perExpert);
    }
}
