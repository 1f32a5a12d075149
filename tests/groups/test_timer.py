"""The two timer implementations the coordinator runs on."""

from __future__ import annotations

import asyncio

from odradek.broker.groups import LoopTimer, ManualTimer


def test_manual_timer_fires_in_deadline_order_and_honours_replacement_and_cancel():
    timer = ManualTimer()
    fired = []
    timer.schedule("a", 100, lambda: fired.append("a"))
    timer.schedule("b", 50, lambda: fired.append("b"))
    timer.schedule("c", 10, lambda: fired.append("c"))
    timer.schedule("a", 200, lambda: fired.append("a2"))  # replaces the first "a"
    timer.cancel("c")
    assert timer.deadline("a") == 200 and timer.deadline("c") is None
    timer.advance(150)
    assert fired == ["b"] and timer.now_ms() == 150
    timer.advance(50)
    assert fired == ["b", "a2"] and not timer.is_scheduled("a")


def test_manual_timer_runs_timers_armed_by_callbacks_within_the_window():
    timer = ManualTimer()
    fired = []
    timer.schedule("first", 10, lambda: timer.schedule("second", 10, lambda: fired.append(timer.now_ms())))
    timer.advance(30)
    assert fired == [20]


def test_loop_timer_fires_on_the_loop_and_takes_over_timers_armed_before_it_ran():
    timer = LoopTimer()
    fired = []
    timer.schedule("early", 0, lambda: fired.append("early"))  # no loop yet: deferred
    timer.schedule("cancelled", 0, lambda: fired.append("cancelled"))
    timer.cancel("cancelled")
    assert timer.is_scheduled("early")

    async def main():
        timer.schedule("late", 20, lambda: fired.append("late"))
        await asyncio.sleep(0.1)

    asyncio.run(main())
    assert fired == ["early", "late"] and not timer.is_scheduled("late")
